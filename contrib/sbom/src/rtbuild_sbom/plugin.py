"""The ``post_build`` hook: SBOM of the built image, OSV match, policy (docs/plugins/sbom.md).

Installed is not enabled: the hook returns at once unless ``[plugins.sbom] enabled = true``.
Reading an image costs seconds, and a plugin that every dev venv and test session loads
through its entry point must not slow or change builds nobody asked it to scan. This
module imports only rtbuild, so loading the plugin costs nothing either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import rtbuild

if TYPE_CHECKING:
    from rtbuild import BuildRequest, BuildResult, Config, RuntimeBuilder


@rtbuild.hookimpl
def post_build(request: BuildRequest, result: BuildResult, config: Config, builder: RuntimeBuilder) -> None:
    if config.plugin_config("sbom").get("enabled") is not True:
        return
    from .report import progress
    from .scan import enforce, scan_image
    from .settings import Settings

    settings = Settings.from_config(config)
    report = scan_image(result.image, settings, builder)
    # A label would need a new image (labels are part of the image config, so its ID
    # would change): the SBOM's digest goes into the result's details instead.
    result.details["sbom"] = report.to_dict()
    progress(report, settings)
    enforce(report, settings)


__all__ = ["post_build"]
