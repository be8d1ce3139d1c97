"""A small OCI distribution client: does a registry hold an image?

``manifest_exists`` sends ``HEAD /v2/<name>/manifests/<tag-or-digest>``. On a 401 it reads
the ``WWW-Authenticate`` challenge: ``Bearer`` fetches a token from the realm (with the
docker config's credentials when there are some), ``Basic`` sends them directly.
Loopback registries are spoken to over http, as dockerd treats 127.0.0.0/8 as insecure;
others over https unless listed in ``insecure_registries``. httpx is imported inside the
functions, so ``import rtbuild`` stays light.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

from rtbuild.errors import RegistryAuthError, RegistryError
from rtbuild.oci._credentials import Credentials, get_credentials, masked_answer
from rtbuild.oci._deadline import retry_after, within
from rtbuild.oci._hosts import Challenge, is_insecure, is_loopback, parse_challenge, same_origin
from rtbuild.oci._references import Reference, parse_reference
from rtbuild.oci._sessions import Sessions

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT_S = 15.0
#: No single registry request (retries included) takes longer than this, however slowly
#: the registry drips its answer: httpx's timeouts apply per read, not per request.
DEFAULT_DEADLINE_S = 30.0
#: Every manifest kind ``docker pull`` understands; a registry answers 404 for a
#: manifest whose media type we did not accept.
MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
#: An upload's deadline grows by one second per this many bytes (1 MiB/s at the slowest).
MIN_UPLOAD_RATE = 1024 * 1024
#: Connection resets are worth a retry; refused connections are not (the registry is down).
RETRY_ATTEMPTS = 3


def _cause(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


class RegistryClient:
    """Talks to registries for one CLI call; keeps the tokens it obtained."""

    def __init__(
        self,
        *,
        insecure_registries: Iterable[str] = (),
        timeout: float = DEFAULT_TIMEOUT_S,
        credentials: Callable[[str], Credentials | None] | None = None,
        transport: httpx.BaseTransport | None = None,
        deadline: float = DEFAULT_DEADLINE_S,
    ) -> None:
        self.insecure_registries = list(insecure_registries)
        self.timeout = timeout
        self.deadline = deadline
        self._credentials = credentials or get_credentials
        self._transport = transport  # unit tests pass an httpx.MockTransport
        self._tokens: dict[tuple[str, str, str], str] = {}
        #: (registry, repository, action) -> the Authorization that opened it, sent up front
        #: by :meth:`request` (an upload's body is not sent twice).
        self._authorizations: dict[tuple[str, str, str], str] = {}
        self._sessions: Sessions | None = None

    # --- transport ---------------------------------------------------------------------

    def _schemes(self, registry: str) -> list[str]:
        if is_loopback(registry):
            return ["http"]
        if is_insecure(registry, self.insecure_registries):
            return ["https", "http"]  # dockerd tries TLS first for insecure registries too
        return ["https"]

    def _client(self, registry: str) -> httpx.Client:
        """This client's connection to ``registry``, kept for its next request (``_sessions.py``)."""
        if self._sessions is None:
            self._sessions = Sessions(self.timeout, self.insecure_registries, self._transport)
        return self._sessions.client(registry)

    def _send(
        self, client: httpx.Client, method: str, url: str, deadline: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        import httpx
        from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

        content: Any = kwargs.get("content")
        start = content.tell() if content is not None and hasattr(content, "seek") else None
        ends = time.monotonic() + (self.deadline if deadline is None else deadline)
        once = hasattr(content, "__next__") and start is None  # a body that cannot be rewound

        def attempt() -> httpx.Response:
            for left in range(RETRY_ATTEMPTS - 1, -1, -1):  # a 429 with Retry-After: asked again after it
                if start is not None:  # a streamed body is sent again from its start
                    content.seek(start)
                response = client.request(method, url, **kwargs)
                if once or not left or (pause := retry_after(response, ends - time.monotonic())) is None:
                    return response
                response.close()
                time.sleep(pause)
            raise AssertionError("unreachable")

        sender = retry(
            retry=retry_if_exception_type((httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)),
            # A body that cannot be rewound (an iterator) is sent once.
            stop=stop_after_attempt(1 if once else RETRY_ATTEMPTS),
            wait=wait_exponential(multiplier=0.2, max=2),
            reraise=True,
        )(attempt)
        return within(self.deadline if deadline is None else deadline, sender, url, client.close)

    def _unreachable(self, registry: str, url: str, exc: BaseException) -> RegistryError:
        import httpx

        hint = f"check that the registry {registry} is running and reachable from this machine"
        if isinstance(exc, httpx.ConnectError) and "ssl" in str(exc).lower():
            hint = (
                f"TLS with {registry} failed: if it serves plain http or a self-signed certificate, list it in"
                " [builders.docker] insecure_registries (or point SSL_CERT_FILE at its CA bundle)"
            )
        return RegistryError(
            f"registry {registry} is unreachable ({url}): {_cause(exc)}",
            step="query registry",
            hint=hint,
        )

    def _request(
        self,
        registry: str,
        method: str,
        path: str,
        headers: dict[str, str],
        content: bytes | IO[bytes] | None = None,
        *,
        url: str | None = None,
        deadline: float | None = None,
    ) -> httpx.Response:
        """Send to the first scheme that answers (or to ``url`` as it is); transport
        failures become RegistryError."""
        import httpx

        urls = [url] if url else [f"{scheme}://{registry}{path}" for scheme in self._schemes(registry)]
        last: tuple[str, BaseException] | None = None
        # TLS and proxy rules are those of the host asked (an upload's storage may be another).
        client = self._client(httpx.URL(url).netloc.decode() if url else registry)
        for target in urls:
            try:
                return self._send(client, method, target, deadline, headers=headers, content=content)
            except httpx.HTTPError as exc:
                last = (target, exc)
                if not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                    break
        assert last is not None
        raise self._unreachable(registry, *last) from last[1]

    # --- authentication ----------------------------------------------------------------

    def _no_credentials(self, ref: Reference, creds: Credentials | None) -> RegistryAuthError:
        config = os.environ.get("DOCKER_CONFIG") or "~/.docker"
        if creds is None:
            return RegistryAuthError(
                f"registry {ref.registry} requires authentication and no credentials for it were found"
                f" in {config}/config.json",
                step="authenticate to registry",
                hint=f"run `docker login {ref.registry}` (or point DOCKER_CONFIG at a config.json that has them)",
            )
        return RegistryAuthError(
            f"registry {ref.registry} refused the credentials from {creds.source or 'the docker config'}"
            f" for {ref.repository}",
            step="authenticate to registry",
            hint=f"check the user name and password with `docker login {ref.registry}`",
        )

    def _token(self, ref: Reference, challenge: Challenge, creds: Credentials | None, scope: str) -> str:
        import httpx

        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(
                f"registry {ref.registry} sent a Bearer challenge without a realm",
                step="authenticate to registry",
                hint="the registry's token auth is misconfigured (no realm URL): check its auth settings",
            )
        service = challenge.params.get("service", "")
        key = (realm, service, scope)
        if key in self._tokens:
            return self._tokens[key]
        params = {"scope": scope, **({"service": service} if service else {})}
        try:
            realm_url = httpx.URL(realm)
        except httpx.InvalidURL:
            realm_url = None
        if realm_url is None or realm_url.scheme not in ("http", "https") or not realm_url.host:
            raise RegistryError(
                f"registry {ref.registry} named a token service that is not an http(s) URL",
                step="authenticate to registry",
                hint="check the registry's auth configuration (its Bearer realm)",
            )
        realm_host = realm_url.netloc.decode()
        plain = realm_url.scheme != "https"
        if (
            creds is not None
            and plain
            and not (is_loopback(realm_host) or is_insecure(realm_host, self.insecure_registries))
        ):
            # A challenge may name any token URL: never hand credentials to a non-loopback
            # host over plain http unless the user listed it as insecure.
            raise RegistryAuthError(
                f"registry {ref.registry} wants credentials sent to {realm_url.scheme}://{realm_host}, which is"
                " neither https nor loopback nor a listed insecure registry: refusing to send them",
                step="authenticate to registry",
                hint=f"list {realm_host} in insecure_registries if plain http there is intended",
            )
        client = self._client(realm_host)
        try:
            if creds and creds.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "client_id": "rtbuild",
                }
                response = self._send(client, "POST", realm, data={**form, **params})
            else:
                auth = (creds.username or "", creds.password or "") if creds and creds.password else None
                response = self._send(client, "GET", realm, params=params, auth=auth)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"token service {realm} for registry {ref.registry} is unreachable: {_cause(exc)}",
                step="authenticate to registry",
                hint="check the registry's token service is running and reachable",
            ) from exc
        if response.status_code in (401, 403):
            raise self._no_credentials(ref, creds)
        if response.status_code >= 400:
            raise RegistryError(
                f"token service {realm} for registry {ref.registry} answered HTTP {response.status_code}",
                step="authenticate to registry",
                log_tail=masked_answer(response.text.splitlines()[-5:], creds),
                hint="the registry's token service failed: try again later, or check its logs",
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):  # an HTML login page, a proxy's error
            raise RegistryError(
                f"token service {realm} for registry {ref.registry} answered with something that is not a JSON object",
                step="authenticate to registry",
                hint="check the registry's auth configuration (its Bearer realm), or a proxy in front of it",
            )
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(
                f"token service {realm} for registry {ref.registry} returned no token",
                step="authenticate to registry",
                hint="check the registry's token service: its answer has neither `token` nor `access_token`",
            )
        self._tokens[key] = str(token)
        return str(token)

    def _authorization(
        self, ref: Reference, challenge: Challenge | None, action: str
    ) -> tuple[str, Credentials | None]:
        """The ``Authorization`` header answering ``challenge``, and the credentials used."""
        if challenge is None or challenge.scheme not in ("bearer", "basic"):
            raise RegistryError(
                f"registry {ref.registry} asked for authentication with an unsupported challenge",
                step="authenticate to registry",
                hint="rtbuild supports Bearer (token) and Basic registry authentication",
            )
        creds = self._credentials(ref.registry)
        if challenge.scheme == "basic":
            if creds is None or creds.password is None:
                raise self._no_credentials(ref, None)
            pair = f"{creds.username or ''}:{creds.password}".encode()
            return f"Basic {base64.b64encode(pair).decode('ascii')}", creds
        scope = f"repository:{ref.repository}:{action}"
        return f"Bearer {self._token(ref, challenge, creds, scope)}", creds

    # --- API -----------------------------------------------------------------------------

    def request(
        self,
        ref: Reference,
        method: str,
        path: str = "",
        *,
        action: str = "pull",
        headers: dict[str, str] | None = None,
        content: bytes | IO[bytes] | None = None,
        url: str | None = None,
    ) -> httpx.Response:
        """One request to ``ref``'s registry (``path``, or ``url`` as it is: an upload's
        ``Location``), answering a 401 challenge once with the credentials for ``action``
        (``pull``, ``pull,push``, ...) and sending that Authorization up front next time.
        Any status comes back but a second 401 (:class:`RegistryAuthError`); transport
        failures and the deadline (longer for a large ``Content-Length``) are
        :class:`RegistryError`. A ``url`` on another origin (upload storage) gets no credentials."""
        registry = ref.api_host
        sent = dict(headers or {})
        own = url is None or any(same_origin(url, f"{s}://{registry}") for s in self._schemes(registry))
        key = (registry, ref.repository, action)
        if own and key in self._authorizations:
            sent["Authorization"] = self._authorizations[key]
        deadline = self.deadline + int(sent.get("Content-Length") or 0) / MIN_UPLOAD_RATE
        response = self._request(registry, method, path, sent, content, url=url, deadline=deadline)
        if response.status_code != 401 or not own:
            return response
        if sent.pop("Authorization", None) is not None:  # it expired: a fresh token
            self._tokens = {k: v for k, v in self._tokens.items() if v not in self._authorizations.pop(key)}
        challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
        sent["Authorization"], creds = self._authorization(ref, challenge, action)
        response = self._request(registry, method, path, sent, content, url=url, deadline=deadline)
        if response.status_code == 401:
            raise self._no_credentials(ref, creds)
        self._authorizations[key] = sent["Authorization"]
        return response

    def manifest_exists(self, ref: Reference | str) -> bool:
        """Whether the registry holds ``ref``'s manifest. 404 is ``False``, quietly."""
        if isinstance(ref, str):
            ref = parse_reference(ref)
        path = f"/v2/{ref.repository}/manifests/{ref.manifest_ref}"
        headers = {"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}
        registry = ref.api_host
        response = self._request(registry, "HEAD", path, headers)
        scheme: str | None = None
        creds: Credentials | None = None
        if response.status_code == 401:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            headers["Authorization"], creds = self._authorization(ref, challenge, "pull")
            scheme = challenge.scheme if challenge else None
            response = self._request(registry, "HEAD", path, headers)
        if response.status_code in (405, 501):  # a registry without HEAD support
            response = self._request(registry, "GET", path, headers)
        status = response.status_code
        if status == 200:
            return True
        if status == 404:
            return False
        if status in (401, 403):
            if scheme == "basic":  # the same credentials twice: they were refused
                raise self._no_credentials(ref, creds)
            # A token that does not open the repository: Docker Hub answers this way for
            # repositories that do not exist, so say both (as `docker pull` does).
            raise RegistryAuthError(
                f"registry {ref.registry} denied access to {ref.repository}: the repository does not exist"
                " or needs other credentials",
                step="authenticate to registry",
                hint=f"run `docker login {ref.registry}` with an account that may pull {ref.repository}",
            )
        if status == 429:
            raise RegistryError(
                f"registry {ref.registry} is rate limiting requests (HTTP 429)",
                step="query registry",
                hint="wait and retry, or log in to get a higher limit",
            )
        raise RegistryError(
            f"registry {ref.registry} answered HTTP {status} for {ref.repository}:{ref.manifest_ref}",
            step="query registry",
            log_tail=masked_answer(response.text.splitlines()[-5:], creds) if response.text else None,
            hint="check the registry's logs; retry if it was a transient failure",
        )


def manifest_exists(
    ref: Reference | str,
    *,
    insecure_registries: Iterable[str] = (),
    timeout: float = DEFAULT_TIMEOUT_S,
) -> bool:
    """Whether the registry of ``ref`` holds it (see :class:`RegistryClient`)."""
    return RegistryClient(insecure_registries=insecure_registries, timeout=timeout).manifest_exists(ref)


__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "Challenge",
    "RegistryClient",
    "is_insecure",
    "is_loopback",
    "manifest_exists",
    "parse_challenge",
]
