"""A ResourceQuota refusing the build's Job or Secret answers 403 as RBAC does; its message
says 'exceeded quota'. rtbuild called it an RBAC denial (ClusterAuthError, 'RBAC: the account
needs verb create on resource secrets'), sending a platform team to fix a Role that was fine."""

from __future__ import annotations

from rtbuild_kubernetes.clusterauth import auth_error
from rtbuild_kubernetes.failures import ClusterAuthError, QuotaExceededError

QUOTA = (
    'secrets "rtbuild-app-b1-push" is forbidden: exceeded quota: team-a, requested: count/secrets=1,'
    " used: count/secrets=20, limited: count/secrets=20"
)
RBAC = 'secrets is forbidden: User "ci" cannot create resource "secrets" in API group "" in the namespace "builds"'


def test_a_full_quota_is_not_blamed_on_rbac() -> None:
    error = auth_error("create", "secrets", 403, QUOTA, "builds")
    assert isinstance(error, QuotaExceededError) and not isinstance(error, ClusterAuthError)
    assert "count/secrets=20" in str(error)
    assert "kubectl describe resourcequota -n builds" in (error.hint or "")
    assert "RBAC" not in (error.hint or "")
    assert error.blame == "cluster capacity"


def test_an_rbac_denial_keeps_its_hint() -> None:
    error = auth_error("create", "secrets", 403, RBAC, "builds")
    assert isinstance(error, ClusterAuthError)
    assert "RBAC: the account needs verb 'create' on resource 'secrets'" in (error.hint or "")
