"""KubernetesBuilder: every build is a Kubernetes Job that builds and pushes the image.

Nothing heavy is imported at module level: lightkube, httpx and yaml load only when a
build, a dry run or a registry query needs them.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from rtbuild import BuilderCapabilities, BuildRequest, BuildResult, ConfigError, RuntimeBuilder

from .manifests import JobPlan
from .settings import Settings, settings_from_config

if TYPE_CHECKING:
    from rtbuild import Config, ImageInfo

    from .client import KubeClient
    from .registry_ops import RegistryOps

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x")


#: Extra buildah arguments that name files of this machine, which the pod does not have (it
#: read its own file of that name, or failed), and the one that carries a password inline.
_LOCAL_PATH_ARGS = (
    "--secret",
    "--ssh",
    "--authfile",
    "--cert-dir",
    "--volume",
    "-v",
    "--ignorefile",
    "--build-arg-file",
    "--build-context",
)


def _refuse_local_args(extra: list[str]) -> None:
    for arg in extra:
        name = arg.split("=", 1)[0]
        if name == "--creds":
            raise ConfigError(
                "the extra argument --creds would put a registry password into the build Job's pod spec",
                step="validate request",
                hint="log in on this machine (docker login / podman login): rtbuild hands the Job this"
                " machine's credentials for the registries in a Secret",
            )
        if name in _LOCAL_PATH_ARGS:
            raise ConfigError(
                f"the extra argument {name} names a file of this machine, which the build pod does not have",
                step="validate request",
                hint="drop it: the Kubernetes builder sends the build context alone to the cluster;"
                " a build that needs a secret, an SSH agent or a host directory runs with the Docker or Podman builder",
            )


class KubernetesBuilder(RuntimeBuilder):
    """Builds as Kubernetes Jobs (see docs/builders/kubernetes.md)."""

    capabilities: ClassVar[BuilderCapabilities] = BuilderCapabilities(
        push=True,
        platforms=PLATFORMS,
        multi_platform=True,
        target=True,
        no_cache=True,
        cache_export=True,
        dry_run=True,
    )

    def __init__(self, settings: Settings | None = None, *, client: KubeClient | None = None) -> None:
        self.settings = (settings or Settings()).validate()
        self._client = client
        self._connecting = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, name: str = "kubernetes") -> KubernetesBuilder:
        return cls(settings_from_config(config, name))

    # --- helpers -----------------------------------------------------------------------

    def client(self) -> KubeClient:
        with self._connecting:  # one client for build-many's threads (one exec plugin login)
            if self._client is None:
                from .client import connect

                self._client = connect(self.settings)
            return self._client

    def registry(self) -> RegistryOps:
        from .registry_ops import RegistryOps

        return RegistryOps(self.settings.insecure_registries)

    def _namespace(self) -> str:
        if self._client is not None:
            return self._client.namespace
        return self.settings.namespace or _kubeconfig_namespace(self.settings) or "default"

    def _insecure(self, tags: list[str]) -> bool:
        from rtbuild.oci import is_insecure, is_loopback, parse_reference

        hosts = [parse_reference(tag).api_host for tag in tags]
        return any(is_loopback(h) or is_insecure(h, self.settings.insecure_registries) for h in hosts)

    @staticmethod
    def _checked(request: BuildRequest) -> BuildRequest:
        """``request`` with the extra ``--build-arg K=V`` among its build args (buildah reads
        them last; a base a ``FROM $K`` names is an input of the skip), after refusing extra
        arguments rtbuild could not honour: ``-t``, ``--output``, a second Dockerfile."""
        from rtbuild.context import check_one_dockerfile
        from rtbuild.enginekit import build_args_in, refuse_result_args

        extra = list(request.extra_build_args)
        refuse_result_args(extra)
        _refuse_local_args(extra)
        check_one_dockerfile(request.path, [*(["-f", request.dockerfile] if request.dockerfile else []), *extra])
        return dataclasses.replace(request, build_args={**request.build_args, **build_args_in(extra)})

    def _dockerfile(self, request: BuildRequest) -> tuple[str, list[str]]:
        """The Dockerfile relative to the context (validated), and the extra args without ``-f``
        in any spelling the core reads (``rtbuild.context.dockerfile_args``: ``-f X``, ``--file X``,
        ``--file=X``, ``-f=X``, ``-fX``; the Job passes the resolved one), nor ``--iidfile`` (a
        path on this machine, which the pipeline writes)."""
        from rtbuild.context import dockerfile_arg, dockerfile_args, validate_context

        extra = list(request.extra_build_args)
        given = request.dockerfile or dockerfile_arg(extra)
        full = validate_context(request.path, ["-f", given] if given else [])
        relative = os.path.relpath(os.path.abspath(full), os.path.abspath(request.path))
        if relative.startswith(".."):
            raise ConfigError(
                f"the Dockerfile {full} is outside the build context",
                step="validate request",
                hint="the Kubernetes builder sends only the context to the cluster: move the Dockerfile into it",
            )
        cleaned: list[str] = []
        skip = False
        for arg in extra:
            if skip:
                skip = False
            elif arg in ("-f", "--file", "--iidfile"):
                skip = True
            elif not arg.startswith("--iidfile=") and not dockerfile_args([arg]):
                cleaned.append(arg)
        return relative, cleaned

    def _plans(self, request: BuildRequest, build_id: str, labels: dict[str, str]) -> list[JobPlan]:
        if not request.tags:
            raise ConfigError(
                "a build needs at least one tag", step="validate request", hint="pass -t REGISTRY/NAME:TAG"
            )
        from .buildargs import refuse_inline_secrets, split_extra

        dockerfile, extra = self._dockerfile(request)
        extra, secret_extra = split_extra(extra)
        refuse_inline_secrets({**request.build_args, **secret_extra})
        platforms: list[str | None] = list(request.platforms()) or [None]
        if len(platforms) > 1:
            from rtbuild.oci import parse_reference

            repos = {(parse_reference(t).registry, parse_reference(t).repository) for t in request.tags}
            if len(repos) > 1:
                raise ConfigError(
                    "a multi-platform build's tags must share one repository (the index references its images)",
                    step="validate request",
                    hint="build once per repository, or copy the index to the other repository afterwards",
                )
        plans = []
        for platform in platforms:
            tags = list(request.tags)
            if len(platforms) > 1:
                # Each platform's Job pushes to a temporary tag; the index then gets the real ones.
                from rtbuild.oci import parse_reference

                ref = parse_reference(request.tags[0])
                tags = [f"{ref.registry}/{ref.repository}:rtbuild-{build_id}-{(platform or '').replace('/', '-')}"]
            plan = JobPlan(
                build_id=build_id,
                namespace=self._namespace(),
                tags=tags,
                dockerfile=dockerfile,
                platform=platform,
                build_args={**request.build_args, **secret_extra},
                labels=labels,
                target=request.target,
                no_cache=request.no_cache,
                cache_from=list(request.cache_from),
                cache_to=list(request.cache_to),
                extra_build_args=extra,
                insecure_registry=self._insecure(request.tags),
            )
            plans.append(plan)
        return plans

    def _registries(self, request: BuildRequest) -> list[str]:
        """The registries the build Job talks to: the tags' and the cache's, and those the
        Dockerfile takes images from (FROM, COPY --from, mounts), private bases included."""
        from rtbuild.enginekit import external_images
        from rtbuild.oci import parse_reference

        refs = [*request.tags, *request.cache_from, *request.cache_to]
        if self.settings.cache_repository:
            refs.append(self.settings.cache_repository)
        found = {parse_reference(ref).registry for ref in refs}
        with open(os.path.join(request.path, self._dockerfile(request)[0]), encoding="utf-8", errors="replace") as f:
            platforms = request.platforms()
            images = external_images(f.read(), request.build_args, platforms[0] if platforms else None)
        for image in images:
            try:
                found.add(parse_reference(image).registry)
            except Exception:  # buildah reports a name it cannot use itself
                continue
        return sorted(found)

    # --- the contract ------------------------------------------------------------------

    def plan(self, request: BuildRequest) -> str:
        """The manifests the build would create, as YAML (credentials never included)."""
        from rtbuild.enginekit import warn_secret_args
        from rtbuild.oci import get_credentials

        from .buildargs import SECRET_ADVICE, SECRET_HANDLING, masked, secret_names
        from .manifests import manifests, to_yaml

        request = self._checked(request)
        plans = self._plans(request, "dryrun0000", dict(request.labels))
        warn_secret_args(plans[0].build_args, handling=SECRET_HANDLING, advice=SECRET_ADVICE)
        has_creds = any(get_credentials(registry) is not None for registry in self._registries(request))
        for plan in plans:
            if has_creds or secret_names(plan.build_args):
                plan.secret_name = f"{plan.job_name}-push"
            # A secret name that cannot travel in the Secret is printed as NAME=***.
            plan.build_args = masked(plan.build_args)
            if self.settings.transport == "registry":
                plan.context_ref = f"{self._context_repository(request)}@sha256:<context-digest>"
        header = (
            f"# rtbuild: {len(plans)} Job(s) in namespace {plans[0].namespace};"
            f" the context goes in over {'pods/exec' if self.settings.transport == 'exec' else 'the registry'}\n"
        )
        return header + to_yaml(manifests(plans, self.settings))

    def build(
        self,
        path: str,
        tags: list[str],
        platform: str | None = None,
        extra_build_args: list[str] | None = None,
    ) -> str:
        request = BuildRequest(
            path=path, tags=list(tags), platform=platform, extra_build_args=list(extra_build_args or [])
        )
        return self.build_request(request).image

    def build_request(self, request: BuildRequest) -> BuildResult:
        from .run import run_build

        started = time.perf_counter()
        request = self._checked(request)
        # A letter first, so YAML never reads a build id as a number.
        details = run_build(self, request, build_id="b" + uuid.uuid4().hex[:9])
        return BuildResult(
            image=request.tags[0],
            tags=list(request.tags),
            builder=self.name or "kubernetes",
            duration_s=round(time.perf_counter() - started, 3),
            cached=bool(details.pop("cached", False)),
            details=details,
        )

    def _context_repository(self, request: BuildRequest) -> str:
        if self.settings.context_repository:
            return self.settings.context_repository
        from rtbuild.oci import parse_reference

        ref = parse_reference(request.tags[0])
        return f"{ref.registry}/{ref.repository}-rtbuild-context"

    def image_exists(self, image_name: str, pull_from_repo: bool = True) -> bool:
        """A registry HEAD: the cluster's images live in registries, not on this machine."""
        from rtbuild.oci import RegistryClient

        return RegistryClient(insecure_registries=self.settings.insecure_registries).manifest_exists(image_name)

    def push(self, tag: str) -> None:
        """The build Job pushed every tag; this only confirms ``tag`` is in its registry."""
        from rtbuild import PushError

        if not self.image_exists(tag):
            raise PushError(
                f"{tag} is not in its registry: the Kubernetes builder pushes only from its build Job",
                step="push",
                hint="build it with `rtbuild build --builder kubernetes -t " + tag + "`",
            )

    def image_id(self, name: str) -> str | None:
        found = self.registry().image_config(name)
        return found[0] if found else None

    def inspect_image(self, name: str) -> ImageInfo | None:
        from rtbuild import ImageInfo

        found = self.registry().image_config(name)
        if found is None:
            return None
        image_id, document = found
        labels = (document.get("config") or {}).get("Labels") or {}
        platform = f"{document.get('os', 'linux')}/{document.get('architecture', 'amd64')}"
        return ImageInfo(id=image_id, labels=dict(labels), created=document.get("created"), platforms=(platform,))


def _kubeconfig_namespace(settings: Settings) -> str | None:
    """The namespace of the kubeconfig's context, read without lightkube (dry runs)."""
    if settings.in_cluster:
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding="utf-8") as handle:
                return handle.read().strip() or None
        except OSError:
            return None
    # Every file of $KUBECONFIG, merged as kubectl (and a build: kubeauth.load_kubeconfig) merges them.
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    paths = [settings.kubeconfig] if settings.kubeconfig else listed or [os.path.expanduser("~/.kube/config")]
    try:
        import yaml

        documents: list[Any] = []
        for path in paths:
            if len(paths) == 1 or os.path.exists(path):
                with open(path, encoding="utf-8") as handle:
                    documents.append(yaml.safe_load(handle) or {})
        name = settings.context or next((d.get("current-context") for d in documents if d.get("current-context")), None)
        for entry in (entry for d in documents for entry in d.get("contexts") or []):
            if entry.get("name") == name:
                found = (entry.get("context") or {}).get("namespace")
                return found if isinstance(found, str) else None
    except (OSError, ValueError, yaml.YAMLError, AttributeError, TypeError):
        return None  # a malformed file: connecting to the cluster reports it (a ConfigError)
    return None


__all__ = ["KubernetesBuilder"]
