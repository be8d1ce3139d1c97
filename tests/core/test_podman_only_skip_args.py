"""Podman's own build flags that bring in what the no-op digest cannot see turn the skip off."""

from __future__ import annotations

from rtbuild.enginekit import skip_blocked


def test_podmans_hidden_pull_always_turns_the_skip_off() -> None:
    """``--pull-always`` (podman build's hidden spelling of ``--pull=always``) pulls the base
    from its registry on every build; the skip compared the local base's ID and reused the
    image built on the old base after the registry's had moved (as ``--pull`` would not)."""
    assert skip_blocked(["--pull-always"]) == "--pull-always"
    assert skip_blocked(["--pull-always=true"]) == "--pull-always"
    assert skip_blocked(["--pull"]) == "--pull"


def test_podmans_from_turns_the_skip_off() -> None:
    assert skip_blocked(["--from", "base:1"]) == "--from"
    assert skip_blocked(["--from=base:1"]) == "--from"
    assert skip_blocked(["--format", "docker"]) is None
