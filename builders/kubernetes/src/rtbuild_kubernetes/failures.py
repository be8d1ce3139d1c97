"""The Kubernetes builder's errors, and the mapping of a failed pod onto them.

Every failure is an :class:`rtbuild.AgentRuntimeBuildError` with the step, the exit code
(where a container ran), the log tail and a hint; ``blame`` says whose move it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rtbuild import AgentRuntimeBuildError, BuildFailedError, ConfigError, EngineUnavailableError, PushError

if TYPE_CHECKING:
    from .settings import Settings

TAIL = 20


class KubernetesBuildError(BuildFailedError):
    """A build Job failed in the cluster."""

    def __init__(self, message: str, *, exit_code_in_pod: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.container_exit_code = exit_code_in_pod

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["container_exit_code"] = self.container_exit_code
        return data


class BuildCancelledError(KubernetesBuildError):
    """The Job was stopped because the build was cancelled (interrupt, another platform failed)."""


class UploadError(KubernetesBuildError):
    """Streaming the context into the pod failed."""


class UnschedulableError(KubernetesBuildError):
    """The scheduler found no node for the build pod."""


class StepImagePullError(KubernetesBuildError):
    """The node cannot pull the build step image."""


class OutOfMemoryError(KubernetesBuildError):
    """The build container was OOM-killed."""


class DeadlineExceededError(KubernetesBuildError):
    """The Job ran past activeDeadlineSeconds (or rtbuild's own wait)."""


class RunStepFailedError(KubernetesBuildError):
    """A Dockerfile step failed inside the build pod."""


class ContainerRuntimeError(KubernetesBuildError):
    """The OCI runtime in the build pod could not start a step's process (a transient fault of the node)."""


class PodRefusedError(KubernetesBuildError):
    """The cluster refused to create the Job's pod (Pod Security admission, a webhook, an invalid spec)."""


class EvictedError(KubernetesBuildError):
    """The node evicted the build pod."""


class PodDisruptedError(KubernetesBuildError):
    """The cluster is deleting the build pod (its node lost, a drain, a preemption): DisruptionTarget."""


class JobDeletedError(KubernetesBuildError):
    """The build Job was deleted by someone else (an operator, a namespace clean-up) while it ran."""


class ObjectGoneError(KubernetesBuildError):
    """The API answered 404 for an object of the build: it is not (or no longer) in the cluster."""


class StepPushError(PushError):
    """The build step could not push to the registry."""


class QuotaExceededError(KubernetesBuildError):
    """The namespace's ResourceQuota refused to create an object of the build (HTTP 403)."""


class ClusterAuthError(EngineUnavailableError):
    """The Kubernetes API refused the credentials (401) or the RBAC rules (403)."""


class ClusterUnreachableError(EngineUnavailableError):
    """The Kubernetes API server cannot be reached."""


_PUSHING = "rtbuild-step: pushing "


def _push_cause(tail: list[str]) -> str:
    """The registry's answer in buildah's last error line, else a generic phrase."""
    for line in reversed(tail):
        if line.startswith("Error:"):
            cause = line[len("Error:") :].strip()
            return cause if len(cause) <= 400 else "..." + cause[-400:]  # the end names the reason
    return "the registry refused it or could not be reached"


def _tail(lines: list[str]) -> list[str]:
    return [line for line in lines if line.strip()][-TAIL:]


def _failed_step(lines: list[str]) -> str:
    """The last Dockerfile step the log shows (buildah: ``STEP 2/3: RUN ...``; BuildKit: ``#5 [2/3] RUN``)."""
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("STEP ") or (text.startswith("#") and "[" in text and "]" in text):
            return text[:200]
    return "build"


def terminated_error(
    state: dict[str, Any], lines: list[str], *, container: str, pod: str, limits: dict[str, str]
) -> KubernetesBuildError | PushError:
    """The error for a container that ended with a non-zero exit code."""
    code = int(state.get("exitCode") or 0)
    reason = state.get("reason") or "Error"
    message = (state.get("message") or "").strip()
    tail = _tail(lines) or _tail(message.splitlines())
    if reason == "OOMKilled":
        return OutOfMemoryError(
            f"the build container was killed for using too much memory (OOMKilled, exit code {code})",
            step=_failed_step(lines),
            log_tail=tail,
            exit_code_in_pod=code,
            hint=f"raise [builders.kubernetes] limits.memory (now {limits.get('memory', 'unset')})",
            blame="build resources",
        )
    if reason in ("ContainerCannotRun", "StartError", "CreateContainerError"):
        return KubernetesBuildError(
            f"the kubelet could not start the {container} container ({reason}, exit code {code})",
            step="start build pod",
            log_tail=tail,
            exit_code_in_pod=code,
            hint="the node refused the container's security context or image; see the message above",
            blame="cluster configuration",
        )
    if container != "build":
        return UploadError(
            f"the context init container ended with exit code {code} ({reason})",
            step="upload context",
            log_tail=tail,
            exit_code_in_pod=code,
            hint="the context was not received in time; see upload_timeout_seconds and the log lines above",
            blame="cluster",
        )
    # The step prints "rtbuild-step: pushing TAG" once the build has succeeded (set -e): a failure
    # after it is the push's, however many lines buildah's retries wrote since (they push the
    # marker out of the tail). Without the live log, the termination message's lines tell.
    if any(line.startswith(_PUSHING) for line in lines or message.splitlines()):
        return StepPushError(
            f"the push from the build pod failed (exit code {code}): {_push_cause(tail)}",
            step="push",
            log_tail=tail,
            hint=(
                "check that the registry is reachable from the cluster's pods (network policies, DNS, proxies;"
                " host_network = true for a registry only the nodes reach), the push credentials"
                " (docker login on this machine) and that the account may push there"
            ),
            blame="registry",
        )
    from rtbuild.enginekit import RUNTIME_FAULT_HINT, host_fault_hint, runtime_fault

    step = _failed_step(lines)
    fault = runtime_fault(lines)
    if fault is not None:
        return ContainerRuntimeError(
            f"the container runtime in pod {pod} could not start {step}: {fault}",
            step=step,
            log_tail=tail,
            exit_code_in_pod=code,
            hint=RUNTIME_FAULT_HINT,
            blame="the build pod's container runtime",
        )
    # A full disk (the pod's ephemeral storage) or a SIGKILL (a memory limit without an
    # OOMKilled reason: cgroup v1, a killed child) is the pod's host's, not the Dockerfile's.
    host = host_fault_hint(lines or message.splitlines(), code)
    return RunStepFailedError(
        f"the build failed in pod {pod}: {step} (exit code {code})",
        step=step,
        log_tail=tail,
        exit_code_in_pod=code,
        hint=host or "fix the failing Dockerfile step; the log tail above is the pod's own output",
        blame="build resources" if host else "Dockerfile",
    )


def waiting_error(state: dict[str, Any], pod: str, image: str) -> KubernetesBuildError | None:
    """An error for a container stuck waiting (image pull), or None while it may start."""
    reason = state.get("reason") or ""
    if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"):
        return StepImagePullError(
            f"the node cannot pull the build step image {image} ({reason})",
            step="pull step image",
            log_tail=_tail((state.get("message") or "").splitlines()),
            hint=(
                "build and push the step image (docs/builders/kubernetes.md, 'The step image'), then set"
                " [builders.kubernetes] step_image; private registries need image_pull_secrets"
            ),
            blame="cluster configuration",
        )
    if reason in ("CreateContainerConfigError", "CreateContainerError"):
        return KubernetesBuildError(
            f"the kubelet cannot create the build container in pod {pod} ({reason})",
            step="start build pod",
            log_tail=_tail((state.get("message") or "").splitlines()),
            hint="check the pod's events (secret, volume or security context problems)",
            blame="cluster configuration",
        )
    return None


def unschedulable_error(message: str, pod: str, selector: dict[str, str]) -> UnschedulableError:
    return UnschedulableError(
        f"no node can run the build pod {pod}: {message}",
        step="schedule build pod",
        log_tail=[message] if message else None,
        hint=(
            f"the pod asks for nodeSelector {selector or '{}'} and the resources in [builders.kubernetes];"
            " check node labels (kubernetes.io/arch: without --platform or an arch in node_selector the pod"
            " asks for amd64), taints/tolerations and free capacity"
        ),
        blame="cluster capacity",
    )


def deadline_error(seconds: int, lines: list[str], no_pod: list[str] | None = None) -> DeadlineExceededError:
    """``no_pod``: why the Job could not create its pod (FailedCreate reasons), when it never had one."""
    if no_pod:
        return DeadlineExceededError(
            f"the build Job exceeded its deadline of {seconds}s without a pod: the cluster did not create it"
            f" ({no_pod[-1]})",
            step="create build pod",
            log_tail=no_pod[-TAIL:],
            hint=(
                "free or raise the namespace's quota (`kubectl describe resourcequota`), or lower"
                " [builders.kubernetes] requests and limits"
                if "quota" in no_pod[-1]
                else "the Job's Events say why (`kubectl describe job`); fix that, then build again"
            ),
            blame="cluster capacity",
        )
    return DeadlineExceededError(
        f"the build Job exceeded its deadline of {seconds}s and was stopped",
        step=_failed_step(lines),
        log_tail=_tail(lines),
        hint="raise [builders.kubernetes] active_deadline_seconds or build_timeout (--build-timeout; the Job gets"
        " the smaller of the two), or make the build faster",
        blame="build time",
    )


#: Set on an error whose cluster request certainly had no effect (refused with a 4xx, or the
#: API server never reached): a create that failed so created nothing, there is nothing to delete.
NO_EFFECT = "rtbuild_no_effect"


def mark_no_effect(error: AgentRuntimeBuildError, no_effect: bool) -> AgentRuntimeBuildError:
    setattr(error, NO_EFFECT, no_effect)
    return error


def had_no_effect(error: BaseException) -> bool:
    """Whether the cluster call that raised ``error`` certainly changed nothing."""
    return bool(getattr(error, NO_EFFECT, False))


def namespace_missing_error(namespace: str, server: str, step: str) -> ConfigError:
    return ConfigError(
        f"the namespace {namespace!r} does not exist in the cluster at {server}",
        step=step,
        hint=f"create it (`kubectl create namespace {namespace}`, with the Role in docs/builders/kubernetes.md),"
        " or set [builders.kubernetes] namespace to one that exists",
    )


def pod_refused_error(message: str, job: str, settings: Settings) -> tuple[PodRefusedError | None, str]:
    """A FailedCreate Event's message: the error when the refusal is final, and the reason (the
    message without the attempt's pod name, the same on every retry)."""
    reason = message.split(" is forbidden: ", 1)[-1] if " is forbidden: " in message else message
    final = (" is forbidden: " in message and "exceeded quota" not in message) or " is invalid: " in message
    if not final:
        return None, reason
    if "PodSecurity" in message:
        hint = (
            f"the namespace's Pod Security level refuses privilege = {settings.privilege!r}: label the namespace"
            " (pod-security.kubernetes.io/enforce=privileged), build in a namespace that allows it, or pick"
            " another privilege mode (docs/builders/kubernetes.md, 'Privilege modes')"
        )
    else:
        hint = f"an admission controller or the pod spec is at fault; `kubectl describe job {job}` shows the Events"
    error = PodRefusedError(
        f"the cluster refused to create the build pod of Job {job}: {message.removeprefix('Error creating: ')}",
        step="create build pod",
        log_tail=[message],
        hint=hint,
        blame="cluster configuration",
    )
    return error, reason


def job_deleted_error(job: str, what: str, lines: list[str]) -> JobDeletedError:
    return JobDeletedError(
        f"the build Job {job} was deleted while waiting for {what}, not by rtbuild",
        step="create build pod" if what == "the build pod to start" and not lines else "build",
        log_tail=lines[-TAIL:],
        hint="someone (`kubectl delete job`), a clean-up of the namespace or a controller removed the Job;"
        " run the build again",
        blame="cluster",
    )


def pod_deleted_error(
    pod: dict[str, Any], what: str, lines: list[str], *, job: str | None = None
) -> KubernetesBuildError:
    """The build pod was deleted; ``job``: its Job's name when the Job is gone too (deleted first)."""
    if job is not None:
        return job_deleted_error(job, what, lines)
    return KubernetesBuildError(
        f"the build pod {pod.get('metadata', {}).get('name')} was deleted while waiting for {what}",
        step="build",
        log_tail=lines[-20:],
        hint="someone or something (a controller, a TTL) deleted the pod; run the build again",
        blame="cluster",
    )


__all__ = [
    "BuildCancelledError",
    "ClusterAuthError",
    "ClusterUnreachableError",
    "ContainerRuntimeError",
    "DeadlineExceededError",
    "EvictedError",
    "JobDeletedError",
    "KubernetesBuildError",
    "ObjectGoneError",
    "OutOfMemoryError",
    "PodDisruptedError",
    "PodRefusedError",
    "QuotaExceededError",
    "RunStepFailedError",
    "StepImagePullError",
    "StepPushError",
    "UnschedulableError",
    "UploadError",
    "deadline_error",
    "had_no_effect",
    "job_deleted_error",
    "mark_no_effect",
    "namespace_missing_error",
    "pod_deleted_error",
    "pod_refused_error",
    "terminated_error",
    "unschedulable_error",
    "waiting_error",
]
