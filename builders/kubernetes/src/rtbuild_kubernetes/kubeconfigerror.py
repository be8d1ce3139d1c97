"""The error of a kubeconfig that cannot be loaded (:class:`rtbuild_kubernetes.client.LightkubeClient`).

Malformed YAML is told by its kind and position alone: PyYAML's text quotes the lines around
the fault (its pure-Python loader, which ``yaml.safe_load`` is, always does), and a
kubeconfig's lines hold tokens and client keys.
"""

from __future__ import annotations

from typing import Any

from rtbuild import AgentRuntimeBuildError, ConfigError


def kubeconfig_error(exc: BaseException, where: str) -> AgentRuntimeBuildError:
    """``exc``, met loading the configuration from ``where``, as a ConfigError. Malformed
    YAML, or YAML of the wrong shape (a list, an empty file, an entry that is not a mapping):
    lightkube's loader meets the latter as an AttributeError or TypeError. The caller must
    not chain a YAML error to it (its text is what is kept out)."""
    import yaml
    from lightkube.core.exceptions import ConfigError as KubeConfigError

    cause = f"no entry named {exc}" if isinstance(exc, KeyError) else (str(exc).splitlines() or [""])[0]
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        cause = "malformed YAML" + (f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "")
    if not isinstance(exc, KubeConfigError):
        cause = f"{type(exc).__name__}: {cause}"
    return ConfigError(
        f"cannot load the Kubernetes configuration from {where}: {cause}",
        step="connect to cluster",
        hint="set [builders.kubernetes] kubeconfig (and context), or in_cluster = true inside a pod;"
        " `kubectl config view` shows what the file holds",
    )


def load_unquoted(path: str | None, where: str) -> Any:
    """:func:`rtbuild_kubernetes.kubeauth.load_kubeconfig`, with malformed YAML a ConfigError
    raised outside the handler: chained to nothing (``--debug`` prints the chain)."""
    import yaml

    from .kubeauth import load_kubeconfig

    try:
        return load_kubeconfig(path)
    except yaml.YAMLError as exc:
        error = kubeconfig_error(exc, where)
    raise error


__all__ = ["kubeconfig_error", "load_unquoted"]
