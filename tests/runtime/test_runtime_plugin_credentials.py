"""A runtime plugin's ``env`` or ``build_args`` value holding a URL with a password is refused.

``env`` becomes ``ENV`` in the image's configuration and ``build_args`` ``ARG NAME=VALUE``
defaults in its history, both readable by anyone who can pull the image (and the rendered
Dockerfile is staged in the context): a plugin handing on ``PIP_INDEX_URL`` or a proxy with
credentials put them there without a word.
"""

from __future__ import annotations

import pytest
from rtbuild.errors import PluginError
from rtbuild.runtime._compose import render
from rtbuild.runtime._plugin import RuntimeRequirements

PASSWORD = "Rv5-plugin-url-password"


@pytest.mark.parametrize("kind", ["env", "build_args", "labels"])
@pytest.mark.parametrize(
    "value",
    [f"https://__token__:{PASSWORD}@pypi.example/simple", f"http://proxy-user:{PASSWORD}@proxy.example:3128"],
)
def test_a_url_password_from_a_plugin_never_reaches_the_dockerfile(kind: str, value: str) -> None:
    req = RuntimeRequirements(**{kind: {"PIP_INDEX_URL": value}}, dockerfile="RUN true")
    with pytest.raises(PluginError) as info:
        render("base.example/os:1", [("ok", RuntimeRequirements(env={"A": "1"})), ("leaky", req)])
    text = info.value.render()
    assert PASSWORD not in text
    assert "'leaky'" in text and "PIP_INDEX_URL" in text and "password" in text


def test_a_url_without_a_password_is_kept() -> None:
    req = RuntimeRequirements(env={"PIP_INDEX_URL": "https://pypi.example/simple", "HTTP_PROXY": "http://p:3128"})
    composition = render("base.example/os:1", [("plain", req)])
    assert "ENV PIP_INDEX_URL=" in composition.deps.dockerfile
