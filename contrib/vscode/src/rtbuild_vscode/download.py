"""Host-side download of a release archive, verified by sha256 and cached by its digest.

The archive is streamed to a temporary file in the cache directory while it is hashed;
only a file whose sha256 matches the expected one is renamed into place, so nothing
unverified ever reaches a build context. Cache: ``$XDG_CACHE_HOME/rtbuild/downloads``
(default ``~/.cache/rtbuild/downloads``), one file per digest, guarded by a file lock so
concurrent builds download once.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from rtbuild.errors import ChecksumMismatchError, ConfigError, DownloadError

# hashlib (OpenSSL) and tempfile are imported by the functions that fetch or check an
# archive: loading the plugin (every build, `rtbuild plugins`) must not pay for them.
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
#: Report progress every this many bytes when the size is unknown (else every 10 %).
_REPORT_EVERY = 16 << 20
#: A download still running after this long, or larger than this, is stopped: the
#: per-read timeout alone lets a server that sends a byte now and then hold a build for ever.
DOWNLOAD_DEADLINE_S = 1800.0
MAX_DOWNLOAD_BYTES = 4 << 30


def shown(url: str) -> str:
    """``url`` as errors and progress show it: credentials in the user part or the query
    (presigned URLs) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a malformed URL)"
    user = "***@" if parts.username or parts.password else ""
    netloc = f"{user}[{host}]{port}" if ":" in host else f"{user}{host}{port}"
    return parts._replace(netloc=netloc, query="***" if parts.query else "", fragment="").geturl()


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    from rtbuild import cache_dir as rtbuild_cache_dir

    return rtbuild_cache_dir("downloads", env=env)


def normalize_sha256(value: str, *, source: str) -> str:
    """``sha256:ABC...`` or ``abc...`` -> 64 lowercase hex digits; anything else is a ConfigError."""
    digest = value.strip().lower().removeprefix("sha256:")
    if not _SHA256.match(digest):
        raise ConfigError(
            f"{source} = {value!r} is not a sha256 digest (64 hex digits)",
            step="read configuration",
            hint="use the hex digest from the release's checksum file, e.g. `sha256sum ARCHIVE`",
        )
    return digest


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _mismatch(url: str, expected: str, actual: str) -> ChecksumMismatchError:
    url = shown(url)
    return ChecksumMismatchError(
        f"sha256 mismatch for {url}: expected {expected}, got {actual}",
        step="verify download",
        log_tail=[f"url:      {url}", f"expected: {expected}", f"actual:   {actual}"],
        hint=(
            "nothing was built. If the URL is right, set the sha256 to the release's published digest "
            "(check it against the release page, not just this message); if it is wrong, fix the URL"
        ),
    )


def _stream_to(url: str, target: Path, *, timeout: float, deadline_s: float | None = None) -> str:
    """Download ``url`` into ``target`` (an open-able path); return the content's sha256."""
    import hashlib
    import ssl
    import time

    import httpx
    from rtbuild import get_reporter

    reporter = get_reporter()
    name = shown(url)
    give_up = time.monotonic() + (DOWNLOAD_DEADLINE_S if deadline_s is None else deadline_s)
    digest = hashlib.sha256()
    # The system trust store (and SSL_CERT_FILE / SSL_CERT_DIR), not certifi's bundle:
    # sites behind TLS-intercepting proxies have their CA there.
    verify = ssl.create_default_context()
    try:
        with (
            httpx.Client(verify=verify, follow_redirects=True, timeout=timeout) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise DownloadError(
                    f"cannot download {name}: HTTP {response.status_code} {response.reason_phrase}",
                    step="download",
                    hint="check the URL (release name, version, architecture) in [plugins.vscode] url",
                )
            total = int(response.headers.get("content-length") or 0) or None
            step = max(total // 10, _CHUNK) if total else _REPORT_EVERY
            reporter.event("download_started", url=name, total=total, message=f"downloading {name}")
            done, next_report = 0, step
            with open(target, "wb") as out:
                for chunk in response.iter_bytes():  # as it arrives: a slow server meets the deadline
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if done > MAX_DOWNLOAD_BYTES or time.monotonic() > give_up:
                        too = _too_large() if done > MAX_DOWNLOAD_BYTES else "still running after its deadline"
                        raise DownloadError(
                            f"download of {name} stopped: {too} ({done / 1e6:.1f} MB so far)",
                            step="download",
                            hint="check the URL names the release archive and the server is not stalling",
                        )
                    if done >= next_report:
                        next_report += step
                        share = f" ({100 * done // total}%)" if total else ""
                        reporter.event(
                            "download_progress",
                            url=name,
                            bytes=done,
                            total=total,
                            message=f"downloading {name}: {done / 1e6:.1f} MB{share}",
                        )
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"cannot download {name}: {type(exc).__name__}: {str(exc).replace(url, name)}",
            step="download",
            hint="check the URL and that this host can reach it (proxy: HTTPS_PROXY; CA: SSL_CERT_FILE)",
        ) from exc
    reporter.event("download_finished", url=name, bytes=done, message=f"downloaded {name} ({done / 1e6:.1f} MB)")
    return digest.hexdigest()


def _copy_local(url: str, target: Path) -> str:
    """A file: URL's content into ``target``, bounded as a download is. Only a regular file:
    file:///dev/zero filled the cache's disk, a FIFO without a writer hung rtbuild."""
    import hashlib
    import stat

    source = Path(unquote(urlsplit(url).path))
    name = shown(url)
    try:
        data_digest = hashlib.sha256()
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO's open must not wait for a writer
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise DownloadError(
                    f"cannot read {name}: not a regular file",
                    step="download",
                    hint="point [plugins.vscode] url (RTBUILD_VSCODE_URL) at the release archive file",
                )
            os.set_blocking(fd, True)
            done = 0
            with open(target, "wb") as out:
                for chunk in iter(lambda: handle.read(_CHUNK), b""):
                    done += len(chunk)
                    if done > MAX_DOWNLOAD_BYTES:
                        raise DownloadError(
                            f"copy of {name} stopped: {_too_large()} ({done / 1e6:.1f} MB so far)",
                            step="download",
                            hint="check the URL names the release archive",
                        )
                    out.write(chunk)
                    data_digest.update(chunk)
    except OSError as exc:
        raise DownloadError(f"cannot read {name}: {exc.strerror or exc}", step="download") from exc
    return data_digest.hexdigest()


def _too_large() -> str:
    return f"larger than {MAX_DOWNLOAD_BYTES / (1 << 30):g} GiB"


def fetch(url: str, target: Path, *, timeout: float = 60.0) -> str:
    """Fetch ``url`` (http, https or file) into ``target``; return its sha256."""
    try:
        scheme = urlsplit(url).scheme.lower()
        urlsplit(url).port  # noqa: B018 -- a bad port or IPv6 host raises only when read
    except ValueError as exc:
        raise ConfigError(
            f"the download URL {shown(url)} is malformed: {exc}",
            step="read configuration",
            hint="check [plugins.vscode] url (RTBUILD_VSCODE_URL)",
        ) from None
    if scheme == "file":
        return _copy_local(url, target)
    if scheme in ("http", "https"):
        return _stream_to(url, target, timeout=timeout)
    raise ConfigError(
        f"unsupported URL {shown(url)!r}: only http, https and file URLs can be downloaded",
        step="read configuration",
        hint="give the full release archive URL, e.g. https://github.com/gitpod-io/openvscode-server/releases/...",
    )


def fetch_verified(url: str, sha256: str, *, cache: Path | None = None, timeout: float = 60.0) -> Path:
    """The cached file for ``sha256``, downloading ``url`` first when it is not cached yet.

    Raises :class:`ChecksumMismatchError` (and caches nothing) when the content differs.
    """
    import tempfile

    from filelock import FileLock

    expected = normalize_sha256(sha256, source="sha256")
    cache = cache or cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot use {cache} for downloads: {exc.strerror or exc}",
            step="download",
            hint="make $XDG_CACHE_HOME (default ~/.cache) a writable directory, or point it at one",
        ) from exc
    final = cache / expected
    with FileLock(str(cache / f"{expected}.lock")):
        if final.is_file():
            if file_sha256(final) == expected:
                return final
            final.unlink()  # a corrupted cache entry: fetch again
        fd, temp_name = tempfile.mkstemp(prefix=f".{expected[:12]}-", suffix=".part", dir=cache)
        os.close(fd)
        temp = Path(temp_name)
        try:
            actual = fetch(url, temp, timeout=timeout)
            if actual != expected:
                raise _mismatch(url, expected, actual)
            os.replace(temp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    return final


__all__ = ["cache_dir", "fetch", "fetch_verified", "file_sha256", "normalize_sha256", "shown"]
