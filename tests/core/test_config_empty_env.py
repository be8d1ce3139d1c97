"""What an empty RTBUILD_* variable means, as docs/configuration.md says: a boolean is
false, a list is empty, a string or number is ignored (the file's value stays)."""

from __future__ import annotations

from pathlib import Path

from rtbuild import load_config


def test_empty_variables(tmp_path: Path) -> None:
    path = tmp_path / "rtbuild.toml"
    path.write_text(
        'builder = "podman"\npush = true\ninsecure_registries = ["reg:5000"]\nbuild_timeout = 60\n'
        '[runtime]\nrepo = "127.0.0.1:5000/rt"\n'
    )
    empty = {name: "" for name in ("RTBUILD_BUILDER", "RTBUILD_PUSH", "RTBUILD_INSECURE_REGISTRIES")}
    config = load_config(path, env={**empty, "RTBUILD_BUILD_TIMEOUT": "", "RTBUILD_RUNTIME_REPO": ""})
    assert config.push is False and config.insecure_registries == []
    assert config.builder == "podman" and config.build_timeout == 60 and config.runtime.repo == "127.0.0.1:5000/rt"
