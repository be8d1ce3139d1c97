"""A plugin raising in each hook: the error names the plugin and its distribution (and the
hook), --json prints exactly one object, and a post_build failure after a successful build
reports the built image with exit 4."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from rtbuild.testing import FakeSite, run_cli

HOOK_ARGS = {
    "pre_build": "request, config",
    "build": "request, builder, config",
    "post_build": "request, result, config, builder",
    "image_exists": "image_name, pull_from_repo, builder, config",
}


def _plugin(hook: str, exc: str) -> str:
    return textwrap.dedent(
        f"""
        import rtbuild

        @rtbuild.hookimpl
        def {hook}({HOOK_ARGS[hook]}):
            raise {exc}
        """
    )


@pytest.fixture
def site(rtbuild_site: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    rtbuild_site.add_builder("rtbuild-docker", "docker", module="faults_site_builder")
    monkeypatch.chdir(tmp_path)
    return rtbuild_site


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path / "ctx"


@pytest.mark.parametrize("hook", ["pre_build", "build", "post_build"])
@pytest.mark.parametrize("exc", ["RuntimeError('plugin bug')", "rtbuild.PolicyError('refused by policy')"])
def test_a_raising_plugin_is_named(site: FakeSite, ctx: Path, hook: str, exc: str) -> None:
    site.add_plugin("acme-broken", "broken", _plugin(hook, exc), module=f"broken_{hook}")
    result = run_cli(["build", str(ctx), "-t", "img:1", "--json"])
    document = json.loads(result.stdout)  # exactly one JSON object, whatever failed
    assert "broken" in (document.get("blame") or ""), result.stderr
    assert "acme-broken" in document["blame"]
    assert "from: " in result.stderr and "acme-broken" in result.stderr
    if hook == "post_build" and "PolicyError" in exc:
        # A policy refusal after the build still means "do not use this image": exit 2.
        assert result.exit_code == 2 and document["error"] == "PolicyError"
    elif hook == "post_build":
        assert result.exit_code == 4
        assert document["error"] == "PostBuildError" and document["result"]["image"] == "img:1"
        assert "img:1 was built" in document["message"]
    else:
        assert result.exit_code == (2 if "PolicyError" in exc else 1)


def test_a_raising_image_exists_plugin(site: FakeSite) -> None:
    site.add_plugin("acme-broken", "broken", _plugin("image_exists", "RuntimeError('lookup bug')"))
    result = run_cli(["exists", "img:1", "--json"])
    assert result.exit_code in (1, 3)
    document = json.loads(result.stdout)
    assert "acme-broken" in (document.get("blame") or ""), result.stderr


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_a_background_thread_that_dies_is_one_line_without_debug(site: FakeSite, ctx: Path, debug: bool) -> None:
    """A thread dying of an exception (a plugin's, a backend's, rtbuild's own: the build
    timeout's timer did for --build-timeout 1e10) printed Python's whole traceback."""
    site.add_plugin(
        "acme-threads",
        "threads",
        textwrap.dedent(
            """
            import threading
            import rtbuild

            @rtbuild.hookimpl
            def pre_build(request):
                def work():
                    raise ValueError("worker bug")
                thread = threading.Thread(target=work, name="acme-worker")
                thread.start()
                thread.join()
            """
        ),
        module="threads_plugin",
    )
    result = run_cli(["build", str(ctx), "-t", "img:1", *(["--debug"] if debug else [])])
    assert result.exit_code == 0, result.stderr
    assert "warning: internal error in background thread acme-worker: ValueError: worker bug" in result.stderr
    assert ("Traceback" in result.stderr) is debug
    assert result.stdout == "img:1\n"
