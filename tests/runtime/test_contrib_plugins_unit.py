"""The cacerts and jupyter runtime plugins without an engine: settings, contributions, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtbuild._framework.config import Config
from rtbuild.errors import ConfigError
from rtbuild.runtime._compose import render
from rtbuild_cacerts.plugin import CA_ENV_VARS, DEFAULT_IMAGE_PATH, CACertsPlugin
from rtbuild_jupyter.plugin import CHECK_SCRIPT, START_SCRIPT, JupyterPlugin


def _config(name: str, **table: object) -> Config:
    config = Config()
    config.plugins[name] = dict(table)
    return config


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    return path


@pytest.mark.parametrize(
    "value",
    ["http://user:s3cr3t@proxy:3128", "user:s3cr3t@proxy:3128", "http://token@proxy:3128", "http://u:s3cr3t@[::1]:x"],
)
def test_cacerts_never_copies_proxy_credentials_into_the_image(bundle: Path, value: str) -> None:
    """The proxy URL, password included, went into the image's ENV (and so into its config,
    readable by anyone who pulls it). It is withheld now, with a warning naming the
    variable only; a proxy without credentials is still copied."""
    from rtbuild import Reporter
    from rtbuild._framework.progress import use_reporter

    events: list[dict[str, object]] = []

    class Recorder(Reporter):
        def event(self, kind: str, **fields: object) -> None:
            events.append({"event": kind, **fields})

    env = {"RTBUILD_CACERTS_BUNDLE": str(bundle), "https_proxy": value, "HTTP_PROXY": "http://proxy:3128"}
    with use_reporter(Recorder()):
        req = CACertsPlugin(env=env).requirements(_config("cacerts"))
    assert "HTTPS_PROXY" not in req.env and "https_proxy" not in req.env
    assert req.env["HTTP_PROXY"] == req.env["http_proxy"] == "http://proxy:3128"
    assert not any(value in str(v) for v in req.env.values())
    withheld = [e for e in events if e["event"] == "cacerts_proxy_withheld"]
    assert [e["variable"] for e in withheld] == ["HTTPS_PROXY"]
    assert "--build-arg HTTPS_PROXY=" in str(withheld[0]["message"])
    assert "s3cr3t" not in repr(events) and "token" not in repr(events)


def test_cacerts_copies_the_bundle_and_points_every_tool_at_it(bundle: Path) -> None:
    req = CACertsPlugin(env={}).requirements(_config("cacerts", bundle=str(bundle)))
    assert req.dependency_files == {DEFAULT_IMAGE_PATH: bundle.read_bytes()}
    assert {var: req.env[var] for var in CA_ENV_VARS} == dict.fromkeys(CA_ENV_VARS, DEFAULT_IMAGE_PATH)
    assert not any("PROXY" in key.upper() for key in req.env)
    assert CACertsPlugin.order < JupyterPlugin.order


def test_cacerts_passes_proxy_settings_in_both_cases(bundle: Path) -> None:
    env = {"RTBUILD_CACERTS_BUNDLE": str(bundle), "https_proxy": "http://proxy:3128", "NO_PROXY": "localhost"}
    req = CACertsPlugin(env=env).requirements(Config())
    assert req.env["HTTPS_PROXY"] == req.env["https_proxy"] == "http://proxy:3128"
    assert req.env["NO_PROXY"] == req.env["no_proxy"] == "localhost"
    assert "HTTP_PROXY" not in req.env
    off = CACertsPlugin(env=env).requirements(_config("cacerts", proxy=False))
    assert "HTTPS_PROXY" not in off.env


def test_cacerts_env_precedes_other_plugins_run_steps(bundle: Path) -> None:
    cacerts = CACertsPlugin(env={}).requirements(_config("cacerts", bundle=str(bundle)))
    jupyter = JupyterPlugin().requirements(Config())
    text = render("debian:bookworm", [("cacerts", cacerts), ("jupyter", jupyter)]).deps.dockerfile
    copy_bundle = '"' + DEFAULT_IMAGE_PATH.rsplit("/", 1)[0] + '/"]'  # one COPY into the bundle's directory
    assert text.index("ENV PIP_CERT=") < text.index(copy_bundle) < text.index("RUN ")


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"bundle": "/nonexistent/ca.pem"}, "cannot read the host CA bundle"),
        ({"bogus": 1}, "unknown key 'bogus' in [plugins.cacerts]"),
        ({"image_path": "relative.crt"}, "not a normalised absolute path"),
        ({"proxy": "yes"}, "proxy: expected a boolean, got a string"),
    ],
)
def test_cacerts_settings_errors(table: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        CACertsPlugin(env={}).requirements(_config("cacerts", **table))
    assert words in info.value.message and info.value.hint


def test_cacerts_rejects_a_file_without_certificates(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        CACertsPlugin(env={}).requirements(_config("cacerts", bundle=str(empty)))


def test_cacerts_refuses_a_bundle_holding_a_private_key(bundle: Path) -> None:
    """A cert+key concatenation must not reach an image layer."""
    for kind in ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"):
        cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        bundle.write_text(f"{cert}-----BEGIN {kind}-----\nMIIE\n-----END {kind}-----\n")
        with pytest.raises(ConfigError, match="holds a private key") as info:
            CACertsPlugin(env={}).requirements(_config("cacerts", bundle=str(bundle)))
        assert "MIIE" not in info.value.render()


@pytest.mark.parametrize(
    "key",
    [
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nPrivate-Lines: 1\nAAAAIH\n",
    ],
)
def test_cacerts_refuses_other_private_key_formats(bundle: Path, key: str) -> None:
    """A PGP secret key block (BEGIN PGP PRIVATE KEY BLOCK: no 'PRIVATE KEY-----') and a PuTTY
    key file appended to a bundle went into the image's dependency layer."""
    bundle.write_text(bundle.read_text() + key)
    with pytest.raises(ConfigError, match="holds a private key") as info:
        CACertsPlugin(env={}).requirements(_config("cacerts", bundle=str(bundle)))
    assert "lQOYBF" not in info.value.render() and "AAAAIH" not in info.value.render()


def test_cacerts_refuses_a_fifo_and_an_endless_device(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: opening it for reading would block for ever
    for source, words in ((fifo, "not a regular file"), (Path("/dev/zero"), "not a regular file")):
        with pytest.raises(ConfigError, match=words):
            CACertsPlugin(env={}).requirements(_config("cacerts", bundle=str(source)))


def test_jupyter_splits_install_and_start_script_between_the_groups() -> None:
    req = JupyterPlugin().requirements(_config("jupyter", port=9999, packages=["ipykernel==6.29.5"]))
    assert "python3 -m venv /opt/rtbuild/jupyter-venv" in req.dockerfile
    assert "apt-get install -y --no-install-recommends python3 python3-venv" in req.dockerfile
    assert list(req.dependency_files.values()) == ["ipykernel==6.29.5\n"]
    assert set(req.files) == {START_SCRIPT, CHECK_SCRIPT}
    assert "9999" in str(req.files[START_SCRIPT]) and req.source_dockerfile == "EXPOSE 9999"
    assert str(req.files[CHECK_SCRIPT]).startswith("#!/opt/rtbuild/jupyter-venv/bin/python\n")
    # A new port is a source-only change: the lock hash stays.
    default = JupyterPlugin().requirements(_config("jupyter", packages=["ipykernel==6.29.5"]))
    one, two = render("debian:bookworm", [("jupyter", req)]), render("debian:bookworm", [("jupyter", default)])
    assert one.lock_hash == two.lock_hash and one.source_hash != two.source_hash


def test_jupyter_index_url_is_a_build_arg() -> None:
    req = JupyterPlugin().requirements(_config("jupyter", pip_index_url="http://127.0.0.1:9/simple"))
    assert req.build_args == {"PIP_INDEX_URL": "http://127.0.0.1:9/simple"}
    assert "PIP_INDEX_URL" not in req.env


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"venv": "opt/venv"}, "not a plain absolute path"),
        ({"venv": "/opt/v; rm -rf /"}, "not a plain absolute path"),
        ({"venv": "/opt/.."}, "not a plain absolute path"),
        ({"venv": "/opt/./venv"}, "not a plain absolute path"),
        ({"packages": []}, "non-empty list"),
        ({"port": 0}, "not a TCP port"),
        ({"ip": "localhost"}, "not an IP address"),
        ({"extra": True}, "unknown key 'extra' in [plugins.jupyter]"),
    ],
)
def test_jupyter_settings_errors(table: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        JupyterPlugin().requirements(_config("jupyter", **table))
    assert words in info.value.message


@pytest.mark.parametrize(
    "table",
    [
        {"pip_index_url": "https://__token__:pypi-S3cretTok@pypi.example/simple"},
        {"pip_index_url": "https://pypi-S3cretTok@pypi.example/simple"},
        {"packages": ["ipykernel", "--extra-index-url https://u:pypi-S3cretTok@pypi.example/simple"]},
        {"packages": ["agent @ https://u:pypi-S3cretTok@git.example/agent-1.0.whl"]},
    ],
)
def test_jupyter_refuses_index_credentials_the_image_would_keep(table: dict[str, object]) -> None:
    """pip_index_url is an ARG of the dependency stage: the engine records its value in the
    image's history (`RUN |1 PIP_INDEX_URL=https://__token__:PW@...`, checked with docker
    history), and packages go into requirements.txt, a layer. The docs said 'not kept in
    the image'. Credentials in either are refused, and the error does not repeat them."""
    with pytest.raises(ConfigError) as info:
        JupyterPlugin().requirements(_config("jupyter", **table))
    assert "credentials" in info.value.message
    assert "S3cretTok" not in f"{info.value.message} {info.value.hint}"


def test_jupyter_index_url_without_credentials_is_kept() -> None:
    req = JupyterPlugin().requirements(
        _config("jupyter", pip_index_url="https://pypi.example/simple", packages=["a @ https://h.example/a.whl"])
    )
    assert req.build_args == {"PIP_INDEX_URL": "https://pypi.example/simple"}
