"""No credential from a runtime plugin goes into the image it composes.

A plugin's ``env`` and ``labels`` become ``ENV`` and ``LABEL`` lines (the image's
configuration) and its ``build_args`` ``ARG NAME=VALUE`` defaults (the image's history,
``docker history``), all readable by
anyone who can pull the image, and the rendered Dockerfile is written into the staged
context. A value holding a URL with a password (``https://__token__:PW@pypi.example/simple``,
``http://user:PW@proxy:3128``) is refused before anything is written or built, naming the
plugin and the key, never the value (the cacerts and Jupyter plugins already keep such
values out themselves).
"""

from __future__ import annotations

from rtbuild._masking import url_passwords
from rtbuild.errors import PluginError
from rtbuild.runtime._plugin import RuntimeRequirements


def refuse_credentials(plugin: str, req: RuntimeRequirements) -> None:
    for kind, where, mapping in (
        ("env", "ENV", req.env),
        ("build_args", "ARG default", req.build_args),
        ("labels", "LABEL", req.labels),
    ):
        for key, value in mapping.items():
            if url_passwords(value):
                raise PluginError(
                    f"runtime plugin {plugin!r}: {kind}[{key!r}] holds a URL with a password, which would be"
                    f" written into the image as an {where} (readable by anyone who can pull it)",
                    step="compose runtime image",
                    hint="drop the password from the plugin's configuration; a step that needs it reads it"
                    " from a build secret (RUN --mount=type=secret), which no layer or history keeps",
                )


__all__ = ["refuse_credentials"]
