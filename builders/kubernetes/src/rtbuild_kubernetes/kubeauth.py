"""Kubeconfig users as kubectl serves them, where lightkube falls short: exec credential
plugins (``aws eks get-token``, ``gke-gcloud-auth-plugin``, ``kubelogin``) of every API
version kubectl takes (``client.authentication.k8s.io/v1`` too, which lightkube refuses), with
``KUBERNETES_EXEC_INFO`` and the token's ``expirationTimestamp`` honoured; and a ``tokenFile``
that cannot be read. Each failure is rtbuild's own error, raised before anything is created:
lightkube's were internal errors, after a misleading "could not delete everything" warning.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Generator
from datetime import datetime
from typing import Any

import httpx2
from rtbuild import ConfigError

from .failures import ClusterAuthError, ClusterUnreachableError, mark_no_effect

EXEC_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
    "client.authentication.k8s.io/v1alpha1",
)
#: How long an exec plugin may take (a browser login is not possible: rtbuild is not interactive).
EXEC_TIMEOUT_S = 120.0
#: A token this close to its expirationTimestamp is fetched again before a request.
EXPIRY_MARGIN_S = 30.0
STEP = "connect to cluster"


def _config_error(message: str, hint: str) -> ConfigError:
    error = ConfigError(message, step=STEP, hint=hint)
    mark_no_effect(error, True)  # raised before the request was sent
    return error


class ExecAuth(httpx2.Auth):
    """A kubeconfig user's ``exec`` plugin, run for a bearer token as kubectl runs it."""

    def __init__(self, spec: Any, where: str) -> None:
        self.spec = spec
        self.where = where
        self.bearer: str | None = None
        self.expires: float | None = None  # time.time() of the token's expirationTimestamp
        # One plugin run at a time, as client-go does: a multi-platform build's threads (or
        # build-many's) asking at once ran it once each (a browser login each, for some).
        self.lock = threading.Lock()

    def _run(self) -> None:
        spec = self.spec
        version = str(spec.apiVersion or "")
        if version not in EXEC_VERSIONS:
            raise _config_error(
                f"the kubeconfig's exec plugin {spec.command} asks for API version {version!r},"
                f" which rtbuild does not speak ({', '.join(EXEC_VERSIONS)})",
                f"fix the user's exec.apiVersion in {self.where}",
            )
        env = dict(os.environ)
        env.update((item.name, item.value) for item in spec.env or [])
        info = {"apiVersion": version, "kind": "ExecCredential", "spec": {"interactive": False}}
        env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
        command = [spec.command, *(spec.args or [])]
        try:
            proc = subprocess.run(
                command, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=EXEC_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            install = f" ({spec.installHint.strip()})" if spec.installHint else ""
            raise _config_error(
                f"the kubeconfig's exec plugin {spec.command} cannot be run: {exc}",
                f"install it or put it on PATH{install}; the user is in {self.where}",
            ) from exc
        stderr = _stderr_masked(proc.stderr, proc.stdout)
        token = None
        try:
            status = json.loads(proc.stdout)["status"] if proc.returncode == 0 else {}
            token = status.get("token")
            expiry = status.get("expirationTimestamp")
            self.expires = datetime.fromisoformat(str(expiry).replace("Z", "+00:00")).timestamp() if expiry else None
        except (ValueError, KeyError, TypeError, AttributeError):
            token = None
        if proc.returncode != 0 or not isinstance(token, str) or not token:
            what = f"exited with code {proc.returncode}" if proc.returncode else "printed no ExecCredential token"
            error = ClusterAuthError(
                f"the kubeconfig's exec plugin {spec.command} {what}",
                step=STEP,
                log_tail=[line for line in stderr if line.strip()][-10:] or None,
                hint="log in again with the plugin's own tool (e.g. `aws sso login`, `gcloud auth login`), then"
                " check it with `kubectl get pods`; a plugin that returns a client certificate is not supported",
            )
            raise mark_no_effect(error, True)
        self.bearer = f"Bearer {token}"

    def _stale(self) -> bool:
        return self.bearer is None or (self.expires is not None and time.time() > self.expires - EXPIRY_MARGIN_S)

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        with self.lock:
            fresh = self._stale()
            if fresh:
                self._run()
            sent = str(self.bearer)
        request.headers["Authorization"] = sent
        response = yield request
        if response.status_code == 401 and not fresh:  # revoked early: one new token, as kubectl
            with self.lock:
                if self.bearer == sent:  # no other thread got a new one meanwhile
                    self._run()
                request.headers["Authorization"] = str(self.bearer)
            yield request


def _stderr_masked(stderr: bytes, stdout: bytes) -> list[str]:
    """The plugin's stderr lines with every word of 4 or more characters that it also printed
    on stdout (which may hold the token, even from a plugin that then failed) as ``***``, as
    rtbuild shows a docker credential helper's stderr."""
    from rtbuild.enginekit import Redactor

    words = stdout.decode("utf-8", "replace").translate(str.maketrans('"{}:,', "     ")).split()
    return Redactor(words)(stderr.decode("utf-8", "replace")).splitlines()


#: The kubeconfig fields that name files, resolved against the file that holds them.
_PATHS = {"cluster": ("certificate-authority",), "user": ("client-certificate", "client-key", "tokenFile")}


def load_kubeconfig(path: str | None) -> Any:
    """The kubeconfig as kubectl reads it: ``path``, else every file in ``$KUBECONFIG`` merged
    (the first to name a cluster, user or context, and the first ``current-context``, win; a
    file that does not exist is skipped), else ``~/.kube/config``. Never the pod's service
    account: that takes ``in_cluster = true`` (lightkube's ``from_env`` took it first, so
    rtbuild in a CI runner's pod built in the runner's own namespace whatever KUBECONFIG said)."""
    import yaml
    from lightkube import KubeConfig

    if path:
        return KubeConfig.from_file(path)
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if len(paths) <= 1:
        return KubeConfig.from_file(paths[0] if paths else os.path.expanduser("~/.kube/config"))
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": [], "current-context": None}
    for name in paths:
        if not os.path.exists(name):
            continue
        with open(name, encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
        base = os.path.dirname(os.path.abspath(name))
        for key in ("clusters", "users", "contexts"):
            taken = {entry.get("name") for entry in merged[key]}
            for entry in document.get(key) or []:
                if entry.get("name") in taken:
                    continue
                inner = entry.get(key[:-1]) or {}
                for field in _PATHS.get(key[:-1], ()):
                    if isinstance(inner.get(field), str):
                        inner[field] = os.path.join(base, os.path.expanduser(inner[field]))
                merged[key].append(entry)
        merged["current-context"] = merged["current-context"] or document.get("current-context") or None
    return KubeConfig.from_dict(merged)


def install(client: Any, user: Any, where: str) -> None:
    """Check ``user``'s token file now, and serve its exec plugin with :class:`ExecAuth`
    (``client``: the lightkube Client, whose HTTP client's auth is replaced)."""
    if user is None:
        return
    if getattr(user, "token_file", None):
        try:
            with open(user.token_file, encoding="utf-8") as handle:
                handle.read(1)
        except OSError as exc:
            raise _config_error(
                f"the kubeconfig's token file {user.token_file} cannot be read: {exc.strerror or exc}",
                f"fix the user's tokenFile in {where} (a projected service-account token's path, for instance)",
            ) from exc
    elif getattr(user, "exec", None) is not None and not getattr(user, "token", None):
        client._client._client.auth = ExecAuth(user.exec, where)


def _untrusted(exc: BaseException) -> str | None:
    """Why the API server's certificate was not trusted, when that is what ``exc`` (an httpx
    connect error) comes from: its verify message (unknown issuer, hostname mismatch, expired)."""
    import ssl

    seen: BaseException | None = exc
    for _ in range(8):  # the cause chain: httpx wraps httpcore, which wraps the ssl error
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen.reason or seen)
        seen = seen.__cause__ or seen.__context__
    return None


def unreachable_error(exc: BaseException, server: str, step: str) -> ClusterUnreachableError:
    """The API server could not be spoken to: not reached, or (it answered) with a TLS
    certificate the kubeconfig does not trust, which no waiting mends."""
    why = _untrusted(exc)
    if why is not None:
        return ClusterUnreachableError(
            f"the Kubernetes API at {server} is not trusted: its TLS certificate failed verification ({why})",
            step=step,
            hint="the kubeconfig's certificate-authority(-data) for this cluster does not vouch for the server's"
            " certificate, or it does not name the server's address (a rotated cluster CA, another cluster's"
            " kubeconfig, a stale server address); `kubectl get ns` with the same kubeconfig says the same",
        )
    cause = str(exc).splitlines()[0] if str(exc) else repr(exc)
    return ClusterUnreachableError(
        f"the Kubernetes API at {server} is unreachable: {cause}",
        step=step,
        hint="check the kubeconfig's server address and that this machine can reach it",
    )


__all__ = ["EXEC_VERSIONS", "ExecAuth", "install", "load_kubeconfig", "unreachable_error"]
