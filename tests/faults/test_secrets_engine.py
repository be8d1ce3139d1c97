"""Secrets on the real engine: a --secret used by a RUN step is in no layer, no history, no
log, no JSON; secret-looking build args are masked in every rtbuild output and warned about."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import uuid
from pathlib import Path

import docker_build_helpers as h
import pytest

pytestmark = pytest.mark.engine

images, isolated_dirs, context = h.images, h.isolated_dirs, h.context
SECRET = "s3cr3t-value-4-rtbuild-tests"


def _image_bytes(cli: str, image: str) -> bytes:
    """Every file of every layer, the config and the history, as one blob to search."""
    saved = subprocess.run([cli, "save", image], capture_output=True, check=True, timeout=120).stdout
    blob = [saved]
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            if member.name.endswith("layer.tar"):
                data = outer.extractfile(member)
                assert data is not None
                with tarfile.open(fileobj=io.BytesIO(data.read())) as layer:
                    for item in layer.getmembers():
                        handle = layer.extractfile(item) if item.isfile() else None
                        if handle is not None:
                            blob.append(handle.read())
    history = h.docker(cli, "history", "--no-trunc", image).stdout
    return b"".join(blob) + history.encode()


def test_secret_mount_leaves_no_trace(images: h.Images, context: Path, isolated_dirs: Path) -> None:
    (context / "Dockerfile").write_text(
        "FROM busybox:latest\n"
        "RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /len"
        " && echo leaked: $(cat /run/secrets/token)\n"
    )
    result = h.cli_build(
        str(context),
        "-t",
        images.tag(),
        "--secret",
        "id=token,env=RTBUILD_TEST_TOKEN",
        "--json",
        "--no-cache",  # the secret is not part of BuildKit's cache key: make the RUN step run
        env={"RTBUILD_TEST_TOKEN": SECRET},
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    images.ids.add(document["details"]["image_id"])
    assert h.docker(images.cli, "run", "--rm", images.tag(), "cat", "/len").stdout.strip() == str(len(SECRET))
    assert SECRET.encode() not in _image_bytes(images.cli, images.tag())
    log = Path(document["details"]["log_path"]).read_text()
    assert "leaked: ***" in log  # the RUN printed it; rtbuild masked it
    for text in (result.stdout, result.stderr, log):
        assert SECRET not in text


def test_secret_looking_build_args_are_masked_and_warned(images: h.Images, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM busybox:latest\nARG API_TOKEN\nRUN echo token is $API_TOKEN\n")
    result = h.cli_build(str(context), "-t", images.tag(), "--build-arg", f"API_TOKEN={SECRET}", "--json", env={})
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    images.ids.add(document["details"]["image_id"])
    assert "API_TOKEN" in result.stderr and "--secret" in result.stderr  # the warning
    log = Path(document["details"]["log_path"]).read_text()
    assert "API_TOKEN=***" in log.splitlines()[0]
    # It reached the build (by the client's environment, not its command line): the engine
    # keeps it in the history, as the warning says.
    assert SECRET in h.docker(images.cli, "history", "--no-trunc", images.tag()).stdout
    for text in (result.stdout, result.stderr, log):
        assert SECRET not in text
    dry = h.cli_build(str(context), "-t", images.tag(), "--build-arg", f"API_TOKEN={SECRET}", "--dry-run")
    assert dry.returncode == 0 and SECRET not in dry.stdout + dry.stderr
    # What the engine does with build args is the engine's: the value is in the history.
    assert SECRET in h.docker(images.cli, "history", "--no-trunc", images.tag()).stdout


def test_secret_value_never_in_digest_label(images: h.Images, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM busybox:latest\nRUN --mount=type=secret,id=t true\n")
    result = h.cli_build(
        str(context),
        "-t",
        images.tag(),
        "--secret",
        "id=t,env=RTBUILD_TEST_TOKEN",
        "--json",
        env={"RTBUILD_TEST_TOKEN": SECRET},
    )
    assert result.returncode == 0, result.stderr
    info = h.inspect(images.cli, images.tag())
    assert info is not None
    images.ids.add(info["Id"])
    assert "org.rtbuild.input-digest" not in (info["Config"]["Labels"] or {})  # --secret: always builds
    assert SECRET not in json.dumps(info)
    assert os.environ.get("RTBUILD_TEST_TOKEN") is None


def test_a_failing_build_masks_every_line_of_a_multiline_secret_and_its_value_as_a_plain_arg(
    images: h.Images, context: Path, tmp_path: Path
) -> None:
    """A key file printed by the failing RUN comes out one line at a time: each line is
    masked in the log, stderr, the error's tail and --json; the same value passed again as a
    build arg whose name does not look secret is masked in the log's command line too."""
    lines = ["-----BEGIN RTBUILD TEST KEY-----", "bWlkZGxlLWxpbmUtb2YtdGhlLWtleQ==", "-----END RTBUILD TEST KEY-----"]
    key = tmp_path / "key.pem"
    key.write_text("\n".join(lines) + "\n")
    token = "t0k.e*n+(x)|$"  # regex metacharacters
    (context / "Dockerfile").write_text(
        "FROM busybox:latest\n"
        "RUN --mount=type=secret,id=key --mount=type=secret,id=tok"
        ' cat /run/secrets/key; echo "tok: $(cat /run/secrets/tok)"; exit 5\n'
    )
    result = h.cli_build(
        str(context),
        "-t",
        images.tag(),
        "--secret",
        f"id=key,src={key}",
        "--secret",
        "id=tok,env=RTBUILD_TEST_TOKEN",
        "--build-arg",
        f"PLAIN={token}",
        "--label",
        f"note={lines[1]}",
        "--json",
        "--no-cache",
        env={"RTBUILD_TEST_TOKEN": token},
    )
    assert result.returncode == 1, result.stderr
    error = json.loads(result.stdout)
    assert error["error"] == "BuildFailedError"
    log = Path(error["log_path"]).read_text()
    assert "tok: ***" in log and "PLAIN=***" in log.splitlines()[0] and "note=***" in log.splitlines()[0]
    assert any(line.endswith("***") for line in error["log_tail"])
    for text in (result.stdout, result.stderr, log):
        for secret in (*lines, token):
            assert secret not in text


@pytest.mark.parametrize("builder", ["docker", "podman"])
def test_a_build_arg_too_long_for_the_kernel_is_a_usage_error_naming_it(
    images: h.Images, context: Path, isolated_dirs: Path, builder: str
) -> None:
    """A 200 KB build arg (from a config file or the API: the shell refuses it on a command
    line) makes the kernel refuse the engine's command line (E2BIG, 128 KiB per argument).
    That was 'internal error: OSError' blaming the builder; now it is exit 2 naming the
    build arg, never its value, and nothing is left in TMPDIR."""
    value = "Zq9" + "v" * 200_000
    (context / "rtbuild.toml").write_text(f'[build_args]\nAPI_TOKEN = "{value}"\n')
    result = subprocess.run(
        [h.RTBUILD, "build", ".", "-t", images.tag(), "--builder", builder, "--json"],
        capture_output=True,
        text=True,
        cwd=context,
        env={**os.environ, "RTBUILD_BUILDER": builder},
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    error = json.loads(result.stdout)
    assert error["error"] == "ConfigError" and error["step"] == "start engine"
    assert "build arg API_TOKEN" in error["message"] and "internal error" not in result.stderr
    assert "Zq9" not in result.stdout + result.stderr
    assert not list((isolated_dirs / "TMPDIR").iterdir())


@pytest.mark.parametrize("builder", ["docker", "podman"])
@pytest.mark.parametrize(
    "spelling",
    [["--extra=--secret", "--extra=id=tok,env=RTBUILD_TEST_TOKEN"], ["--extra=--secret=id=tok,env=RTBUILD_TEST_TOKEN"]],
)
def test_a_secret_passed_through_extra_args_is_masked_too(
    images: h.Images, context: Path, builder: str, spelling: list[str]
) -> None:
    """``--extra=--secret ...`` (and a v1 builder's rendered flags) reach the engine as
    they are; the value the RUN printed was in the log, stderr and --json unmasked."""
    (context / "Dockerfile").write_text(
        'FROM busybox:latest\nRUN --mount=type=secret,id=tok echo "extra: $(cat /run/secrets/tok)"\n'
    )
    tag = images.tag()
    result = h.cli_build(
        str(context),
        "-t",
        tag,
        "--builder",
        builder,
        *spelling,
        "--json",
        "--no-cache",
        env={"RTBUILD_TEST_TOKEN": SECRET},
    )
    if builder == "podman":
        subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    log = Path(json.loads(result.stdout)["details"]["log_path"]).read_text()
    assert "extra: ***" in log
    for text in (result.stdout, result.stderr, log):
        assert SECRET not in text


@pytest.mark.parametrize("builder", ["docker", "podman"])
def test_a_password_in_a_build_arg_url_is_masked_and_warned(images: h.Images, context: Path, builder: str) -> None:
    """``--build-arg PIP_INDEX_URL=https://__token__:PW@host/simple``, the usual way to reach
    a private index: the name does not look secret, so the password was in the log's command
    line, --dry-run, and every line the build printed it on (a failing one's error tail too)."""
    (context / "Dockerfile").write_text(
        'FROM busybox:latest\nARG PIP_INDEX_URL\nRUN echo "index is $PIP_INDEX_URL"; exit 3\n'
    )
    url = "https://__token__:Zq9-pypi-token@pypi.example/simple"
    args = [str(context), "-t", images.tag(), "--builder", builder, "--build-arg", f"PIP_INDEX_URL={url}"]
    failed = h.cli_build(*args, "--json")
    assert failed.returncode == 1, failed.stderr
    error = json.loads(failed.stdout)
    log = Path(error["log_path"]).read_text()
    assert "PIP_INDEX_URL=https://__token__:***@pypi.example/simple" in log.splitlines()[0]
    assert any("index is https://__token__:***@pypi.example" in line for line in error["log_tail"])
    assert any("PIP_INDEX_URL" in line and "password" in line for line in failed.stderr.splitlines())
    dry = h.cli_build(*args, "--dry-run")
    assert dry.returncode == 0 and "__token__:***@" in dry.stdout
    for text in (failed.stdout, failed.stderr, log, dry.stdout, dry.stderr):
        assert "Zq9" not in text


def test_a_secret_source_sent_with_the_context_is_warned_about(images: h.Images, context: Path) -> None:
    """``--secret id=npmrc,src=ctx/.npmrc`` with ``COPY . /app``: BuildKit mounts the secret
    for its RUN only, but the same file goes to the engine with the context and the COPY
    puts it in a layer. rtbuild said nothing; now a warning names the secret and the file,
    and not once .dockerignore excludes it."""
    (context / "Dockerfile").write_text("FROM busybox:latest\nCOPY . /app\nRUN --mount=type=secret,id=npmrc true\n")
    (context / ".npmrc").write_text(f"//registry.example/:_authToken={SECRET}\n")
    args = [str(context), "-t", images.tag(), "--secret", f"id=npmrc,src={context / '.npmrc'}", "--json"]
    sent = h.cli_build(*args)
    assert sent.returncode == 0, sent.stderr
    images.ids.add(json.loads(sent.stdout)["details"]["image_id"])
    events = [json.loads(line) for line in sent.stderr.splitlines() if line.startswith("{")]
    warned = [e for e in events if e.get("event") == "warning" and e.get("secret") == "npmrc"]
    assert len(warned) == 1 and ".npmrc" in warned[0]["message"] and ".dockerignore" in warned[0]["message"]
    assert SECRET in h.docker(images.cli, "run", "--rm", images.tag(), "cat", "/app/.npmrc").stdout  # why it warns
    (context / ".dockerignore").write_text("*.md\n.npmrc\n")
    kept_out = h.cli_build(*args)
    assert kept_out.returncode == 0, kept_out.stderr
    images.ids.add(json.loads(kept_out.stdout)["details"]["image_id"])
    assert '"secret": "npmrc"' not in kept_out.stderr
    assert ".npmrc" not in h.docker(images.cli, "run", "--rm", images.tag(), "ls", "-a", "/app").stdout
    # BuildKit reads Dockerfile.dockerignore instead: .dockerignore's exclusion no longer counts.
    (context / "Dockerfile.dockerignore").write_text("*.md\n")
    specific = h.cli_build(*args)
    assert specific.returncode == 0, specific.stderr
    images.ids.add(json.loads(specific.stdout)["details"]["image_id"])
    assert '"secret": "npmrc"' in specific.stderr
    assert SECRET in h.docker(images.cli, "run", "--rm", images.tag(), "cat", "/app/.npmrc").stdout
    for text in (sent.stdout, sent.stderr, kept_out.stdout, kept_out.stderr, specific.stdout, specific.stderr):
        assert SECRET not in text


def test_a_proxy_password_from_the_docker_config_is_masked(images: h.Images, context: Path, tmp_path: Path) -> None:
    """The docker client hands every build the ``proxies`` of its config.json as HTTP_PROXY &
    co.: a step printing its environment showed the proxy's password in the progress, the
    --json events and the log."""
    config = tmp_path / "docker-config"
    config.mkdir()
    proxy = f"http://puser:{SECRET}@127.0.0.1:3128"
    (config / "config.json").write_text(json.dumps({"proxies": {"default": {"httpProxy": proxy, "noProxy": "*"}}}))
    # A nonce: BuildKit keeps the proxy args out of its cache key, so the step must be new.
    (context / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex}; env | grep -i http_proxy\n")
    built = h.cli_build(str(context), "-t", images.tag(), "--json", env={"DOCKER_CONFIG": str(config)})
    assert built.returncode == 0, built.stderr
    document = json.loads(built.stdout)
    images.ids.add(document["details"]["image_id"])
    assert "http_proxy=http://puser:***@127.0.0.1:3128" in built.stderr  # the step did print it
    log = Path(document["details"]["log_path"]).read_text()
    for text in (built.stdout, built.stderr, log):
        assert SECRET not in text
