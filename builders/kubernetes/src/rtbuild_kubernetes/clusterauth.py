"""The API refusing rtbuild: its credentials (401) or its permissions (403), and credentials
that stop working while a build runs.

A service-account token (bound tokens last an hour by default), an OIDC or exec-plugin token,
or a revoked one can expire between the Job's creation and its end. The API then answers 401 to
the next list or poll of the pod (an open watch goes on until it ends). That error blamed the
builder and said nothing of the Job, which rtbuild could not delete with those credentials
either: it went on building, and pushed."""

from __future__ import annotations

from rtbuild import AgentRuntimeBuildError

from .failures import TAIL, ClusterAuthError, QuotaExceededError

#: The blame of a 401: the credentials rtbuild was given, not the builder.
CREDENTIALS = "cluster credentials"
#: The blame of an RBAC 403: the account's Role.
PERMISSIONS = "cluster permissions (RBAC)"


def auth_error(verb: str, resource: str, code: int, message: str, namespace: str) -> AgentRuntimeBuildError:
    if code == 403 and "exceeded quota" in message:  # a ResourceQuota says 403 too: not RBAC's doing
        return QuotaExceededError(
            f"the namespace's quota refuses to {verb} {resource}: {message}",
            step=f"{verb} {resource}",
            hint=f"`kubectl describe resourcequota -n {namespace}`: wait for other builds in the namespace to end,"
            " or have the quota raised",
            blame="cluster capacity",
        )
    if code == 401:
        return ClusterAuthError(
            f"the Kubernetes API rejected the credentials (HTTP 401) on {verb} {resource}",
            step=f"{verb} {resource}",
            hint="the kubeconfig's token or certificate is invalid or expired: refresh it (e.g. log in again)",
            blame=CREDENTIALS,
        )
    res = resource
    group = "batch" if resource == "jobs" else ""
    return ClusterAuthError(
        f"forbidden (HTTP 403): {message or f'cannot {verb} {resource}'}",
        step=f"{verb} {resource}",
        hint=(
            f"RBAC: the account needs verb {verb!r} on resource {res!r}"
            f"{f' (apiGroup {group!r})' if group else ''} in namespace {namespace!r}:"
            " see the Role in docs/builders/kubernetes.md"
        ),
        blame=PERMISSIONS,
    )


def refused_during_build(
    error: ClusterAuthError, *, job: str, namespace: str, selector: str, job_left: bool, lines: list[str]
) -> None:
    """Complete ``error``, raised after the build's Job was created: what became of the Job (its
    delete, tried with the same credentials, may have been refused too) and, for a 401, that the
    credentials worked when the build started. ``selector``: the build's label selector."""
    if error.blame == CREDENTIALS:
        error.message += (
            " during the build: the credentials worked when it started (a token that expired or was revoked)"
        )
        error.hint = (
            "refresh the kubeconfig's token (log in again; a service account's: `kubectl create token NAME"
            " --duration=2h`, longer than the build) or certificate, then run the build again"
        )
    if job_left:
        error.message += (
            f"; the build Job {job} in namespace {namespace} may still be running (and push its image):"
            " it could not be deleted and must be removed by hand"
        )
        error.hint = (
            f"{error.hint}; once the credentials work: `kubectl delete job,secret -l {selector} -n {namespace}`"
        )
    else:
        error.message += f"; the build Job {job} was deleted"
    error.args = (error.message,)
    if not error.log_tail:
        error.log_tail = lines[-TAIL:]


__all__ = ["CREDENTIALS", "PERMISSIONS", "auth_error", "refused_during_build"]
