"""`rtbuild.enginekit.warn_secret_args`: the one warning every CLI backend gives for secret-looking build args."""

from __future__ import annotations

from typing import Any

import rtbuild
from rtbuild._framework.progress import use_reporter
from rtbuild.enginekit import SECRET_ADVICE, warn_secret_args


class _Events(rtbuild.Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))


def _warn(build_args: dict[str, str], **kwargs: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    events = _Events()
    with use_reporter(events):
        names = warn_secret_args(build_args, **kwargs)
    return names, events.events


def test_names_the_secret_looking_args_once_and_never_their_values() -> None:
    names, events = _warn({"API_TOKEN": "tok-123456", "DB_PASSWORD": "pw-abcdef", "VERSION": "1.2"})
    assert names == ["API_TOKEN", "DB_PASSWORD"]
    assert len(events) == 1
    kind, fields = events[0]
    assert kind == "warning"
    assert fields["names"] == ["API_TOKEN", "DB_PASSWORD"]
    message = fields["message"]
    assert "API_TOKEN, DB_PASSWORD" in message and "VERSION" not in message
    assert "tok-123456" not in repr(fields) and "pw-abcdef" not in repr(fields)
    assert message.endswith(SECRET_ADVICE)
    assert "image's history" in message


def test_no_event_without_secret_looking_args() -> None:
    names, events = _warn({"VERSION": "1", "PYTHON": "3.11"})
    assert names == []
    assert events == []


def test_handling_and_advice_are_the_builders_own() -> None:
    _, events = _warn(
        {"SIGNING_KEY": "k" * 10},
        handling="and reach the pod only through the per-build Secret,",
        advice="use a Secret instead",
    )
    message = events[0][1]["message"]
    assert "output and reach the pod only through the per-build Secret, but stay" in message
    assert message.endswith("use a Secret instead")
    assert SECRET_ADVICE not in message


def test_a_url_password_holding_a_raw_at_sign_is_masked_whole() -> None:
    """``https://u:p@ss@host``: curl, pip and Go read the password up to the last ``@`` of
    the host part. The pattern stopped at the first: ``--dry-run`` and the log's command showed
    ``u:***@ss@host`` and the engine's output (``echo $PIP_INDEX_URL``) showed ``p@ss`` whole."""
    from rtbuild.enginekit import Redactor, mask_url_passwords, redact_argv, url_passwords

    url = "https://u:Zq9@x7k@pypi.example/simple"
    assert url_passwords(url) == ["Zq9@x7k"]
    assert (
        mask_url_passwords(f"index {url} and https://a:b@c/d@e")
        == "index https://u:***@pypi.example/simple and https://a:***@c/d@e"
    )
    assert redact_argv(["--build-arg", f"PIP_INDEX_URL={url}"]) == [
        "--build-arg",
        "PIP_INDEX_URL=https://u:***@pypi.example/simple",
    ]
    redact = Redactor.for_build({"PIP_INDEX_URL": url})
    assert "Zq9" not in redact(f"url={url}") and "x7k" not in redact(f"url={url}")


def test_a_percent_encoded_url_password_is_masked_as_tools_print_it() -> None:
    """``p%40ss`` is ``p@ss`` to pip and curl, which print it decoded in their errors."""
    from rtbuild.enginekit import Redactor

    redact = Redactor.for_build({"PIP_INDEX_URL": "https://u:Zq9%40x7k@pypi.example/simple"})
    assert redact("pip: https://u:Zq9@x7k@pypi.example failed") == "pip: https://u:***@pypi.example failed"
    assert redact("raw https://u:Zq9%40x7k@pypi.example") == "raw https://u:***@pypi.example"


def test_a_url_user_name_holding_a_raw_at_sign_does_not_hide_the_password() -> None:
    """``https://me@corp.example:PW@host``: urllib (pip), curl and Go read the user up to the
    first ``:`` and the password up to the last ``@``. The pattern wanted a user without ``@``:
    it found no password at all, so the URL was shown whole in the log's command line and
    ``--dry-run``, not masked in engine output, and not warned about."""
    from urllib.parse import urlsplit

    from rtbuild.enginekit import Redactor, mask_url_passwords, redact_argv, url_passwords

    url = "https://me@corp.example:Zq9x7kPW@pypi.example/simple"
    assert urlsplit(url).password == "Zq9x7kPW"  # the reading every tool shares
    assert url_passwords(url) == ["Zq9x7kPW"]
    assert mask_url_passwords(url) == "https://me@corp.example:***@pypi.example/simple"
    assert "Zq9x7kPW" not in " ".join(redact_argv(["--build-arg", f"PIP_INDEX_URL={url}"]))
    assert (
        Redactor.for_build({"PIP_INDEX_URL": url})(f"GET {url}")
        == "GET https://me@corp.example:***@pypi.example/simple"
    )
    names, events = _warn({"PIP_INDEX_URL": url})
    assert names == ["PIP_INDEX_URL"] and "Zq9x7kPW" not in repr(events)
    # A user without a password is no password, whatever its '@'s and the port after them.
    assert url_passwords("https://me@corp.example@host:8443/simple https://host:8080/p@x") == []
