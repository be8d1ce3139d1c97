"""``rtbuild prune --builder podman``: --keep 1 removes the older rtbuild images of a
repository, keeps the newest and any image a container uses, never an unlabelled one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _podman_support import podman, write_context
from rtbuild import BuildRequest, PruneItem, PrunePolicy
from rtbuild.enginekit import BUILDING, select_prunable
from rtbuild.errors import EngineUnavailableError
from rtbuild_podman import PodmanBuilder
from rtbuild_podman.engine import Podman
from rtbuild_podman.prune import PodmanPruner

pytestmark = [pytest.mark.engine]

RTBUILD = str(Path(sys.executable).with_name("rtbuild"))


@pytest.fixture
def repo(podman_cli: str) -> Iterator[str]:
    name = f"rt-podman-test/prune-{uuid.uuid4().hex[:10]}"
    yield name
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}", f"localhost/{name}", check=False).stdout
    refs = [ref for ref in out.split() if ref]
    if refs:
        podman("rmi", "-f", *refs, check=False)


def _three(tmp_path: Path, repo: str) -> list[str]:
    ctx = write_context(tmp_path / "ctx", "FROM busybox:latest\nARG N=0\nRUN echo $N > /n\n")
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    builder.name = "podman"
    token = uuid.uuid4().hex[:8]
    tags = []
    for n in (1, 2, 3):
        request = BuildRequest(str(ctx), tags=[f"{repo}:{n}"], build_args={"N": f"{token}-{n}"})
        tags.append(builder.build_request(request).image)
    return tags


def _prune(*args: str) -> dict[str, object]:
    argv = [RTBUILD, "prune", "--builder", "podman", "--json", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def _present(repo: str) -> set[str]:
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}", f"localhost/{repo}").stdout
    return {ref.removeprefix("localhost/") for ref in out.split()}


def test_keep_one_keeps_newest_in_use_and_unlabelled(tmp_path: Path, repo: str) -> None:
    plain = f"{repo}:plain"
    write_context(tmp_path / "plain", f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /p\n")
    podman("build", "-q", "-t", plain, str(tmp_path / "plain"))
    one, two, three = _three(tmp_path, repo)
    container = f"rt-podman-test-{uuid.uuid4().hex[:10]}"
    podman("create", "--name", container, f"localhost/{one}")
    try:
        planned = _prune("--keep", "1", "--repo", repo, "--dry-run")
        listed = [(item["name"], item["removed"], item["reason"]) for item in planned["items"]]  # type: ignore[index]
        # The image a container uses is said to be kept (it was left out without a word).
        assert [name for name, _, _ in listed] == [f"localhost/{two}", f"localhost/{one}"]
        assert str(listed[1][2]).endswith("; kept: a container uses it") and listed[1][1] is False
        assert planned["bytes_freed"] == planned["items"][0]["size"]  # type: ignore[index]
        assert _present(repo) == {plain, one, two, three}
        podman("rm", "-f", container)
        done = _prune("--keep", "1", "--repo", repo)
        names = [(item["name"], item["removed"]) for item in done["items"]]  # type: ignore[index]
        assert names == [(f"localhost/{one}", True), (f"localhost/{two}", True)]
        assert _present(repo) == {plain, three}
    finally:
        podman("rm", "-f", container, check=False)


@pytest.fixture
def ids() -> Iterator[list[str]]:
    """Image IDs a test made outside its repository (force-removed at the end)."""
    made: list[str] = []
    yield made
    if made:
        podman("rmi", "-f", *made, check=False)


@pytest.fixture
def locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Build locks of this test (and of the prunes it runs) under tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _plain_build(tmp_path: Path, tag: str, ids: list[str], *, base: str = "busybox:latest", label: bool = True) -> str:
    """A fresh image tagged ``tag`` by a plain ``podman build`` (rtbuild-labelled unless
    ``label=False``); its ID."""
    ctx = write_context(tmp_path / uuid.uuid4().hex, f"FROM {base}\nRUN echo {uuid.uuid4().hex} > /n\n")
    labels = ["--label", "org.rtbuild.input-digest=test"] if label else []
    podman("build", "-q", *labels, "-t", tag, str(ctx))
    image_id = _id(tag)
    assert image_id
    ids.append(image_id)
    return image_id


def _id(name: str) -> str | None:
    proc = podman("image", "inspect", "--format", "{{.Id}}", name, check=False)
    return f"sha256:{proc.stdout.strip()}" if proc.returncode == 0 else None


def _listed(repo: str, **policy: object) -> tuple[PodmanPruner, list[PruneItem]]:
    pruner = PodmanPruner(Podman())
    chosen = PrunePolicy(repositories=(f"localhost/{repo}",), **policy)  # type: ignore[arg-type]
    return pruner, select_prunable(pruner.images(chosen.repositories), chosen)


def test_a_tag_rebuilt_during_the_prune_keeps_its_new_image(tmp_path: Path, repo: str, ids: list[str]) -> None:
    """A build of a selected tag finishing between the listing and the removal keeps its
    image; the old one, now without a tag, is what goes. `podman rmi TAG` deleted the image
    just built and left the old one behind (reproduced)."""
    old = _plain_build(tmp_path, f"{repo}:1", ids)
    _plain_build(tmp_path, f"{repo}:2", ids)
    pruner, items = _listed(repo, keep=1)
    assert [(item.kind, item.name, item.id) for item in items] == [("image", f"localhost/{repo}:1", old)]
    new = _plain_build(tmp_path, f"{repo}:1", ids)  # the build finishes now
    pruner.remove(items[0])
    assert items[0].removed and not items[0].error
    assert _id(f"{repo}:1") == new
    assert _id(old) is None


def test_an_untag_of_a_rebuilt_tag_is_skipped(tmp_path: Path, repo: str, ids: list[str]) -> None:
    """An image tagged in two repositories loses only the selected tag; if that tag names a
    new image by the time of removal, the new image is left alone (it was deleted whole)."""
    old = _plain_build(tmp_path, f"{repo}:1", ids)
    podman("tag", old, f"{repo}-other:keep")
    _plain_build(tmp_path, f"{repo}:2", ids)
    pruner, items = _listed(repo, keep=1)
    assert [(item.kind, item.name) for item in items] == [("tag", f"localhost/{repo}:1")]
    new = _plain_build(tmp_path, f"{repo}:1", ids)
    pruner.remove(items[0])
    assert not items[0].removed and not items[0].error
    assert "kept: the tag names another image" in items[0].reason and items[0].size == 0
    assert _id(f"{repo}:1") == new
    assert _id(f"{repo}-other:keep") == old


def test_a_dangling_image_tagged_during_the_prune_is_kept(tmp_path: Path, repo: str, ids: list[str]) -> None:
    old = _plain_build(tmp_path, f"{repo}:1", ids)
    _plain_build(tmp_path, f"{repo}:1", ids)  # the rebuild leaves `old` dangling
    pruner = PodmanPruner(Podman())
    items = [i for i in select_prunable(pruner.images(), PrunePolicy()) if i.id == old]
    assert [item.kind for item in items] == ["dangling"]
    podman("tag", old, f"{repo}:restored")  # someone names it again
    pruner.remove(items[0])
    assert not items[0].removed and not items[0].error and "kept: the image has a tag now" in items[0].reason
    assert _id(f"{repo}:restored") == old


def test_an_image_that_gains_a_tag_during_the_prune_is_kept(tmp_path: Path, repo: str, ids: list[str]) -> None:
    """Podman deletes an image by ID when it has one tag, whichever: one that gained a tag
    and lost the listed one (rebuilt) went."""
    old = _plain_build(tmp_path, f"{repo}:1", ids)
    _plain_build(tmp_path, f"{repo}:2", ids)
    pruner, items = _listed(repo, keep=1)
    assert [(item.kind, item.id) for item in items] == [("image", old)]
    podman("tag", old, f"{repo}-other:pinned")
    _plain_build(tmp_path, f"{repo}:1", ids)  # the listed tag moves on: `old` has one tag
    pruner.remove(items[0])
    assert not items[0].removed and not items[0].error
    assert "kept: the image has another tag now" in items[0].reason
    assert _id(f"{repo}-other:pinned") == old


def test_an_image_built_from_an_rtbuild_image_by_someone_else_is_not_pruned(
    tmp_path: Path, repo: str, ids: list[str]
) -> None:
    """A plain ``podman build FROM`` an rtbuild image inherits its org.rtbuild.* labels; it
    is not rtbuild's to delete (--keep 1 deleted the user's older image). rtbuild's own
    builds on the same base still go."""
    builder = PodmanBuilder(log_dir=str(tmp_path / "logs"))
    builder.name = "podman"
    base_ctx = write_context(tmp_path / "base", f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /b\n")
    base = builder.build_request(BuildRequest(str(base_ctx), tags=[f"{repo}-base:1"])).image
    user = f"{repo}-user"
    for n in ("1", "2"):
        _plain_build(tmp_path, f"{user}:{n}", ids, base=base, label=False)
        labels = json.loads(podman("image", "inspect", f"{user}:{n}").stdout)[0]["Labels"]
        assert any(key.startswith("org.rtbuild.") for key in labels)  # inherited from the base
    derived = write_context(tmp_path / "derived", f"FROM {base}\nARG N\nRUN echo $N > /d\n")
    token = uuid.uuid4().hex[:8]
    for n in ("1", "2"):
        builder.build_request(BuildRequest(str(derived), tags=[f"{repo}:rt{n}"], build_args={"N": f"{token}-{n}"}))
    ids.append(str(_id(f"{repo}-base:1")))

    done = _prune("--keep", "1", "--repo", user, "--repo", repo)
    assert [item["name"] for item in done["items"]] == [f"localhost/{repo}:rt1"]  # type: ignore[index]
    assert _present(user) == {f"{user}:1", f"{user}:2"}


def test_a_tag_whose_build_is_running_is_kept(tmp_path: Path, repo: str, locks: Path) -> None:
    """A build holds its tags' build locks under the names it was given (``app:1``, which
    podman stores as ``localhost/app:1``): prune keeps that tag, the dry run says so too,
    and it goes once no build holds the lock."""
    from rtbuild._framework.locks import build_lock

    one, _, _ = _three(tmp_path, repo)
    with build_lock([one]):  # a build of `one` in progress (another process's, for prune)
        planned = _prune("--keep", "2", "--repo", repo, "--dry-run")
        held = _prune("--keep", "2", "--repo", repo)
    kept = [str(i["reason"]).partition("; ")[2] for i in planned["items"]]  # type: ignore[union-attr]
    assert kept == [f"kept: {BUILDING}"] and planned["bytes_freed"] == 0
    [item] = held["items"]  # type: ignore[misc]
    assert item["name"] == f"localhost/{one}" and not item["removed"] and item["error"] is None
    assert f"kept: {BUILDING}" in item["reason"]
    assert one in _present(repo)
    done = _prune("--keep", "2", "--repo", repo)
    assert [(i["name"], i["removed"]) for i in done["items"]] == [(f"localhost/{one}", True)]  # type: ignore[index]
    assert one not in _present(repo)


def test_two_prunes_at_once_each_remove_or_keep_and_agree(tmp_path: Path, repo: str, locks: Path) -> None:
    """Concurrent prunes (a cron job and an operator) both exit 0: each selected tag is
    removed by one of them, the other keeps it while the first holds its lock, or finds
    it gone; the newest stays."""
    tags = _three(tmp_path, repo)
    argv = [RTBUILD, "prune", "--builder", "podman", "--json", "--keep", "1", "--repo", repo]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    assert _present(repo) == {tags[-1]}
    for tag in tags[:-1]:
        outcomes = [item for report in reports for item in report["items"] if item["name"] == f"localhost/{tag}"]
        assert all(item["error"] is None for item in outcomes) and any(item["removed"] for item in outcomes)


class _RacedPodman(Podman):
    """``podman images`` failing as it does while another podman process removes an image
    it reads (containers/podman#12582), then answering: 49 of 279 listings failed so while
    a loop built and removed images (podman 4.3.1)."""

    def __init__(self, failures: int) -> None:
        super().__init__("/bin/true")
        self.failures, self.calls = failures, 0

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        if args[0] != "images":
            return subprocess.CompletedProcess(args, 0, "[]", "")
        self.calls += 1
        if self.calls <= self.failures:
            gone = uuid.uuid4().hex * 2
            error = f'Error: checking if image "{gone}" is dangling: reading image "{gone}": '
            error += f'locating image with ID "{gone}": image not known\n'
            return subprocess.CompletedProcess(args, 125, "", error)
        return subprocess.CompletedProcess(args, 0, "[]", "")


def test_a_listing_raced_by_another_podman_process_is_asked_again() -> None:
    """Two prunes at once (or a prune beside a build) failed with exit 1 ('podman failed to
    images --format: ... image not known'); the store was fine a moment later."""
    raced = _RacedPodman(failures=2)
    assert PodmanPruner(raced).images() == [] and raced.calls == 3
    broken = _RacedPodman(failures=100)  # never answers: the error, not an endless loop
    with pytest.raises(EngineUnavailableError, match="image not known"):
        PodmanPruner(broken).images()
    assert broken.calls == 5


def test_repo_in_another_spelling_of_its_registry_matches(tmp_path: Path, repo: str, ids: list[str]) -> None:
    """Podman stores ``docker.io/team/app`` so; ``--repo index.docker.io/team/app`` (one
    repository, as Docker and the metrics read it) removed nothing, without a word."""
    hub = f"docker.io/{repo}"
    one = _plain_build(tmp_path, f"{hub}:1", ids)
    _plain_build(tmp_path, f"{hub}:2", ids)
    done = _prune("--keep", "1", "--repo", f"index.docker.io/{repo}")
    assert [(i["name"], i["removed"]) for i in done["items"]] == [(f"{hub}:1", True)]  # type: ignore[index]
    assert _id(one) is None and _id(f"{hub}:2") is not None


def test_the_digest_record_of_a_deleted_image_goes_with_it(
    tmp_path: Path, repo: str, ids: list[str], locks: Path
) -> None:
    """A Podman build whose context changed while Buildah read it records a withdrawal
    beside the image ID (rtbuild.enginekit.confirm_label); it stayed after prune deleted the
    image, for an ID that may come back."""
    from rtbuild.enginekit import recorded_digests, withdraw_digest

    old = _plain_build(tmp_path, f"{repo}:1", ids)
    kept = _plain_build(tmp_path, f"{repo}:2", ids)
    assert withdraw_digest(old, "k1:" + "0" * 32) and withdraw_digest(kept, "k1:" + "1" * 32)
    done = _prune("--keep", "1", "--repo", repo)
    assert [(i["name"], i["removed"]) for i in done["items"]] == [(f"localhost/{repo}:1", True)]  # type: ignore[index]
    assert recorded_digests(old) == [] and recorded_digests(kept) == ["!k1:" + "1" * 32]
