"""A request, a result or a settings object logged with ``%r`` or an f-string shows no secret.

``repr(BuildRequest(...))`` printed build-arg values of secret-looking names, URL passwords,
``--creds USER:PASSWORD`` and inline ``--secret`` parts whole: ``log.info("building %r",
request)`` in a plugin, or a traceback with locals, put them in the log. The fields keep
their values; only what is shown changes.
"""

from __future__ import annotations

import logging

import pytest
import rtbuild
from rtbuild import BuildRequest, BuildResult, Config, ImageInfo
from rtbuild.runtime._plugin import RuntimeRequirements

TOKEN = "tok-Vq83-never-shown"
URLPW = "urlpw-Lm27"


def _request() -> BuildRequest:
    return BuildRequest(
        path="/ctx",
        tags=["reg.example/app:1"],
        build_args={"API_TOKEN": TOKEN, "PIP_INDEX_URL": f"https://__token__:{URLPW}@pypi.example/simple", "N": "1"},
        labels={"src": f"https://me@corp.example:{URLPW}@git.example/r.git"},
        extra_build_args=[
            "--creds",
            f"rtuser:{TOKEN}-a",
            f"--creds=rtuser:{TOKEN}-b",
            f"--build-arg=GH_TOKEN={TOKEN}-c",
            "--build-arg",
            f"NPM_PASSWORD={TOKEN}-d",
            "--secret",
            f"id=x,value={TOKEN}-e",
        ],
        cache_from=[f"type=registry,ref=https://u:{URLPW}@cache.example/c"],
        data={"api_key": f"{TOKEN}-f", "plugin": {"tokens": [f"{TOKEN}-g"], "count": 3}},
    )


def test_a_requests_repr_shows_no_secret_and_its_fields_keep_their_values(caplog: pytest.LogCaptureFixture) -> None:
    request = _request()
    with caplog.at_level(logging.INFO):
        logging.getLogger("plugin").info("building %r / %s", request, request)
    for shown in (repr(request), str(request), f"{request}", caplog.text):
        assert TOKEN not in shown and URLPW not in shown, shown
    text = repr(request)
    # What is not secret is still there to read.
    for part in (
        "'API_TOKEN': '***'",
        "https://__token__:***@pypi.example/simple",
        "'N': '1'",
        "'rtuser:***'",
        "'--creds=rtuser:***'",
        "'--build-arg=GH_TOKEN=***'",
        "'NPM_PASSWORD=***'",
        "'id=x,***'",
        "'count': 3",
        "tags=['reg.example/app:1']",
    ):
        assert part in text, part
    # The values themselves are untouched.
    assert request.build_args["API_TOKEN"] == TOKEN
    assert request.extra_build_args[1] == f"rtuser:{TOKEN}-a"
    assert request.data["plugin"]["tokens"] == [f"{TOKEN}-g"]
    assert request == _request()


def test_a_results_repr_masks_its_details() -> None:
    result = BuildResult(
        image="app:1",
        tags=["app:1"],
        builder="docker",
        duration_s=1.0,
        details={"command": ["docker", "build", "--build-arg", f"API_TOKEN={TOKEN}"], "registry_password": TOKEN},
    )
    assert TOKEN not in repr(result)
    assert "'API_TOKEN=***'" in repr(result)
    assert result.to_dict()["details"]["registry_password"] == TOKEN


def test_configuration_objects_show_no_secret() -> None:
    config = Config(
        build_args={"NPM_TOKEN": TOKEN},
        builders={"docker": {"docker_host": f"tcp://u:{URLPW}@engine.example:2376"}},
        plugins={"jupyter": {"pip_index_url": f"https://u:{URLPW}@pypi.example/simple", "password": TOKEN}},
    )
    config.sandbox.build_args["GH_TOKEN"] = TOKEN
    requirements = RuntimeRequirements(
        env={"HTTPS_PROXY": f"http://p:{URLPW}@proxy.example:3128"}, build_args={"PYPI_TOKEN": TOKEN}
    )
    info = ImageInfo(id="sha256:1", labels={"origin": f"https://u:{URLPW}@git.example/r"})
    for obj in (config, config.sandbox, requirements, info):
        assert TOKEN not in repr(obj) and URLPW not in repr(obj), repr(obj)
    assert "tcp://u:***@engine.example:2376" in repr(config)
    assert config.builders["docker"]["docker_host"] == f"tcp://u:{URLPW}@engine.example:2376"


def test_the_backends_settings_and_plans_show_no_secret() -> None:
    from rtbuild_docker.settings import DockerSettings
    from rtbuild_docker.spec import BuildSpec
    from rtbuild_kubernetes.manifests import JobPlan

    objs = [
        DockerSettings(docker_host=f"ssh://u:{URLPW}@engine.example"),
        BuildSpec(path="/ctx", tags=["a"], build_args={"API_TOKEN": TOKEN}, secret_values=[TOKEN.encode()]),
        JobPlan(build_id="b", namespace="ns", tags=["a"], build_args={"API_TOKEN": TOKEN}),
    ]
    for obj in objs:
        assert TOKEN not in repr(obj) and URLPW not in repr(obj), repr(obj)


def test_masked_repr_is_public_for_builder_distributions() -> None:
    from rtbuild.enginekit import masked_repr

    assert masked_repr(_request()) == repr(_request())
    assert "masked_repr" in rtbuild.enginekit.__all__


def test_a_request_that_holds_itself_still_prints() -> None:
    """The generated dataclass repr guards against cycles (``...``); a plugin keeping the
    request, or a dict holding itself, in ``data`` must not make logging it raise."""
    request = _request()
    request.data["self"] = request.data
    request.data["request"] = request
    loop: list[object] = []
    loop.append(loop)
    request.data["loop"] = loop
    text = repr(request)
    assert TOKEN not in text and "'request': ..." in text and "'loop': [...]" in text
