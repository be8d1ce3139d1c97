"""``rtbuild prune`` on the real engine: --keep 1 removes the older rtbuild images of a
repository, keeps the newest and any image a container uses, never an unlabelled one."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker_build_helpers as h
import pytest
from rtbuild import PruneItem, PrunePolicy
from rtbuild.enginekit import recorded_digests, select_prunable
from rtbuild_docker.engine import EngineAPI
from rtbuild_docker.prune import DockerPruner

pytestmark = pytest.mark.engine

images, isolated_dirs = h.images, h.isolated_dirs


@pytest.fixture
def other_images(docker_engine: str) -> Iterator[h.Images]:
    found = h.Images(docker_engine, f"rtbuild-test/{uuid.uuid4().hex[:12]}")
    yield found
    found.cleanup()


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "prune-ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nARG N=0\nRUN echo $N > /n\n")
    return ctx


def _three(images: h.Images, ctx: Path) -> list[str]:
    token = uuid.uuid4().hex[:8]  # distinct images per test run
    tags = []
    for n in (1, 2, 3):
        tags.append(h.build(images, ctx, [images.tag(str(n))], build_args={"N": f"{token}-{n}"}).image)
    return tags


def _prune(*args: str) -> dict[str, object]:
    proc = subprocess.run(
        [str(Path(h.RTBUILD)), "prune", "--json", *args], capture_output=True, text=True, timeout=300, env=os.environ
    )
    assert proc.returncode == 0, proc.stderr
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def _present(cli: str, repo: str) -> set[str]:
    out = h.docker(cli, "images", "--format", "{{.Repository}}:{{.Tag}}", repo).stdout
    return set(out.split())


def test_keep_one(images: h.Images, tmp_path: Path, isolated_dirs: Path) -> None:
    ctx = _context(tmp_path)
    # An image in the same repository that rtbuild did not build (no org.rtbuild.* label).
    plain = images.tag("plain")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /p\n")
    h.docker(images.cli, "build", "-q", "-t", plain, str(tmp_path / "plain"))
    assert not any(k.startswith("org.rtbuild.") for k in (h.inspect(images.cli, plain) or {})["Config"]["Labels"] or {})
    one, two, three = _three(images, ctx)

    planned = _prune("--keep", "1", "--repo", images.repo, "--dry-run")
    assert [item["name"] for item in planned["items"]] == [one, two]  # type: ignore[index]
    assert _present(images.cli, images.repo) == {plain, one, two, three}  # a dry run removes nothing
    assert planned["bytes_freed"] == sum(item["size"] for item in planned["items"])  # type: ignore[index]

    # First builds of new tags: each image's input digest is recorded beside it, by image ID.
    ids = {tag: (h.inspect(images.cli, tag) or {})["Id"] for tag in (one, two, three)}
    assert all(recorded_digests(image_id) for image_id in ids.values())

    done = _prune("--keep", "1", "--repo", images.repo)
    assert [(item["name"], item["removed"]) for item in done["items"]] == [(one, True), (two, True)]  # type: ignore[index]
    assert _present(images.cli, images.repo) == {plain, three}
    # The records of the deleted images went with them; the kept image keeps its own.
    assert [bool(recorded_digests(ids[tag])) for tag in (one, two, three)] == [False, False, True]


def test_an_image_in_use_is_kept(other_images: h.Images, tmp_path: Path, isolated_dirs: Path) -> None:
    images = other_images
    ctx = _context(tmp_path)
    one, two, three = _three(images, ctx)
    container = f"rtbuild-test-{uuid.uuid4().hex[:12]}"
    h.docker(images.cli, "create", "--name", container, one)  # stopped, but still using the image
    try:
        done = _prune("--keep", "1", "--repo", images.repo)
        listed = [(item["name"], item["removed"], item["error"], item["reason"]) for item in done["items"]]  # type: ignore[index]
        # The image a container uses is said to be kept (it was left out without a word).
        assert [(name, removed, error) for name, removed, error, _ in listed] == [(two, True, None), (one, False, None)]
        assert str(listed[1][3]).endswith("; kept: a container uses it")
        assert done["bytes_freed"] == done["items"][0]["size"]  # type: ignore[index]
        assert _present(images.cli, images.repo) == {one, three}
    finally:
        h.docker(images.cli, "rm", "-f", container, check=False)


def test_an_engine_that_cannot_be_reached_is_blamed_on_the_builder(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/absent.sock", "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.run([h.RTBUILD, "prune", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)
    assert error["error"] == "EngineUnavailableError" and str(tmp_path) in error["message"]
    assert error["blame"] is not None and error["blame"].startswith("builder docker (rtbuild-docker ")
    assert "from: builder docker" in proc.stderr and "Traceback" not in proc.stderr


def _plain_build(images: h.Images, tmp_path: Path, tag: str, *, label: bool = True) -> str:
    """A fresh image tagged ``tag`` (rtbuild-labelled unless ``label=False``); its ID."""
    ctx = tmp_path / uuid.uuid4().hex
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /n\n")
    labels = ["--label", "org.rtbuild.input-digest=test"] if label else []
    h.docker(images.cli, "build", "-q", *labels, "-t", tag, str(ctx))
    image_id = str((h.inspect(images.cli, tag) or {})["Id"])
    images.ids.add(image_id)
    return image_id


def _listed(policy_repo: str, **policy: object) -> tuple[DockerPruner, list[PruneItem]]:
    pruner = DockerPruner(EngineAPI(None))
    chosen = PrunePolicy(repositories=(policy_repo,), **policy)  # type: ignore[arg-type]
    return pruner, select_prunable(pruner.images(chosen.repositories), chosen)


def test_a_tag_rebuilt_during_the_prune_keeps_its_new_image(images: h.Images, tmp_path: Path) -> None:
    """Prune takes no build lock: a build of a selected tag that finishes between the listing
    and the removal keeps its image; the old one, now without a tag, is what goes. Removing
    by tag deleted the image just built and left the old one behind."""
    old = _plain_build(images, tmp_path, images.tag("1"))
    _plain_build(images, tmp_path, images.tag("2"))
    pruner, items = _listed(images.repo, keep=1)
    assert [(item.kind, item.name, item.id) for item in items] == [("image", images.tag("1"), old)]
    new = _plain_build(images, tmp_path, images.tag("1"))  # the build finishes now
    for item in items:
        pruner.remove(item)
    assert items[0].removed and not items[0].error
    assert (h.inspect(images.cli, images.tag("1")) or {}).get("Id") == new
    assert h.inspect(images.cli, old) is None


def test_an_untag_of_a_rebuilt_tag_is_skipped(images: h.Images, other_images: h.Images, tmp_path: Path) -> None:
    """An image tagged in two repositories loses only the selected tag; if that tag names a
    new image by the time of removal, the new image is left alone (it was deleted whole)."""
    old = _plain_build(images, tmp_path, images.tag("1"))
    h.docker(images.cli, "tag", images.tag("1"), other_images.tag("keep"))
    _plain_build(images, tmp_path, images.tag("2"))
    pruner, items = _listed(images.repo, keep=1)
    assert [(item.kind, item.name) for item in items] == [("tag", images.tag("1"))]
    new = _plain_build(images, tmp_path, images.tag("1"))
    pruner.remove(items[0])
    assert not items[0].removed and not items[0].error and "kept: the tag names another image" in items[0].reason
    assert (h.inspect(images.cli, images.tag("1")) or {}).get("Id") == new
    assert (h.inspect(images.cli, other_images.tag("keep")) or {}).get("Id") == old


def test_a_dangling_image_tagged_during_the_prune_is_kept(images: h.Images, tmp_path: Path) -> None:
    old = _plain_build(images, tmp_path, images.tag("1"))
    _plain_build(images, tmp_path, images.tag("1"))  # the rebuild leaves `old` dangling
    pruner = DockerPruner(EngineAPI(None))
    items = [i for i in select_prunable(pruner.images(), PrunePolicy()) if i.id == old]
    assert [item.kind for item in items] == ["dangling"]
    h.docker(images.cli, "tag", old, images.tag("restored"))  # someone names it again
    pruner.remove(items[0])
    assert not items[0].removed and not items[0].error and "kept: the image has a tag now" in items[0].reason
    assert (h.inspect(images.cli, images.tag("restored")) or {}).get("Id") == old


def test_an_image_that_gains_a_tag_during_the_prune_is_kept(
    images: h.Images, other_images: h.Images, tmp_path: Path
) -> None:
    old = _plain_build(images, tmp_path, images.tag("1"))
    _plain_build(images, tmp_path, images.tag("2"))
    pruner, items = _listed(images.repo, keep=1)
    assert [(item.kind, item.id) for item in items] == [("image", old)]
    h.docker(images.cli, "tag", old, other_images.tag("pinned"))
    pruner.remove(items[0])
    assert not items[0].error and "kept: the image has another tag now" in items[0].reason
    assert (h.inspect(images.cli, other_images.tag("pinned")) or {}).get("Id") == old


def test_an_image_built_from_an_rtbuild_image_by_someone_else_is_not_pruned(
    images: h.Images, other_images: h.Images, tmp_path: Path, isolated_dirs: Path
) -> None:
    """A plain ``docker build FROM`` an rtbuild image inherits its org.rtbuild.* labels; it
    is not rtbuild's to delete (--keep 1 deleted the user's older image). rtbuild's own
    builds on the same base still go."""
    base_ctx = tmp_path / "base"
    base_ctx.mkdir()
    (base_ctx / "Dockerfile").write_text(f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /b\n")
    base = h.build(images, base_ctx, [f"{images.repo}-base:1"]).image
    user_repo, ours = other_images.repo, images.repo
    for n in ("1", "2"):
        ctx = tmp_path / f"user{n}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo {uuid.uuid4().hex} > /u\n")
        h.docker(images.cli, "build", "-q", "-t", f"{user_repo}:{n}", str(ctx))
        labels = (h.inspect(images.cli, f"{user_repo}:{n}") or {})["Config"]["Labels"]
        assert any(key.startswith("org.rtbuild.") for key in labels)  # inherited from the base
    derived = tmp_path / "derived"
    derived.mkdir()
    (derived / "Dockerfile").write_text(f"FROM {base}\nARG N\nRUN echo $N > /d\n")
    token = uuid.uuid4().hex[:8]
    for n in ("1", "2"):
        h.build(images, derived, [images.tag(f"rt{n}")], build_args={"N": f"{token}-{n}"})

    done = _prune("--keep", "1", "--repo", user_repo, "--repo", ours)
    assert [item["name"] for item in done["items"]] == [images.tag("rt1")]  # type: ignore[index]
    assert _present(images.cli, user_repo) == {f"{user_repo}:1", f"{user_repo}:2"}


def test_a_tag_whose_build_is_running_is_kept(images: h.Images, tmp_path: Path, isolated_dirs: Path) -> None:
    """A build of a selected tag holds its build lock (from its no-op check to its push):
    prune keeps that tag, and removes it once no build holds the lock."""
    from rtbuild._framework.locks import build_lock

    one, _, _ = _three(images, _context(tmp_path))
    with build_lock([one]):  # a build of `one` in progress (another process's, for prune)
        planned = _prune("--keep", "2", "--repo", images.repo, "--dry-run")
        held = _prune("--keep", "2", "--repo", images.repo)
    # The dry run says what the real run does: kept, nothing freed.
    kept = [i["reason"].partition("; ")[2] for i in planned["items"]]  # type: ignore[union-attr]
    assert kept == ["kept: a build of this tag is running (or another prune holds its build lock)"]
    assert planned["bytes_freed"] == 0
    [item] = held["items"]  # type: ignore[misc]
    assert item["name"] == one and not item["removed"] and item["error"] is None
    assert "kept: a build of this tag is running" in item["reason"]
    assert one in _present(images.cli, images.repo)
    done = _prune("--keep", "2", "--repo", images.repo)
    assert [(i["name"], i["removed"]) for i in done["items"]] == [(one, True)]  # type: ignore[index]
    assert one not in _present(images.cli, images.repo)


def test_a_parent_of_classic_builder_images_loses_its_tag_only(
    images: h.Images, other_images: h.Images, tmp_path: Path
) -> None:
    """The classic builder records a parent: the engine refuses (409) to delete an image
    others are built on, by ID or by tag. Prune untags it (kind ``tag``, nothing freed),
    as ``docker rmi TAG`` does, instead of failing the run (exit 1)."""
    legacy = {**os.environ, "DOCKER_BUILDKIT": "0"}

    def classic(tag: str, dockerfile: str, *label: str) -> str:
        ctx = tmp_path / uuid.uuid4().hex
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(dockerfile)
        cmd = [images.cli, "build", "-q", *label, "-t", tag, str(ctx)]
        subprocess.run(cmd, env=legacy, check=True, capture_output=True, timeout=300)
        image_id = str((h.inspect(images.cli, tag) or {})["Id"])
        images.ids.add(image_id)
        return image_id

    marker = ["--label", "org.rtbuild.input-digest=test"]
    parent = classic(images.tag("1"), f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /a\n", *marker)
    classic(images.tag("2"), f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /a\n", *marker)
    classic(other_images.tag("child"), f"FROM {images.tag('1')}\nRUN echo child > /c\n")
    done = _prune("--keep", "1", "--repo", images.repo)
    [item] = done["items"]  # type: ignore[misc]
    assert (item["kind"], item["name"], item["removed"], item["error"], item["size"]) == (
        "tag",
        images.tag("1"),
        True,
        None,
        0,
    )
    assert _present(images.cli, images.repo) == {images.tag("2")}
    assert h.inspect(images.cli, parent) is not None  # the child's parent stays


def test_repo_in_its_fully_qualified_spelling_matches(images: h.Images, tmp_path: Path, isolated_dirs: Path) -> None:
    """Docker names images in the familiar form (rtbuild-test/x, app); --repo
    docker.io/rtbuild-test/x (or docker.io/library/app) matched nothing, without a word."""
    one, two, _ = _three(images, _context(tmp_path))
    planned = _prune("--keep", "1", "--repo", f"docker.io/{images.repo}", "--dry-run")
    assert [item["name"] for item in planned["items"]] == [one, two]  # type: ignore[index]


def test_two_prunes_at_once_each_remove_or_keep_and_agree(
    images: h.Images, tmp_path: Path, isolated_dirs: Path
) -> None:
    """Concurrent prunes (a cron job and an operator) both exit 0: each selected tag is
    removed by one of them, the other keeps it while the first holds its lock, or finds
    it gone; the newest stays."""
    ctx = _context(tmp_path)
    token = uuid.uuid4().hex[:8]
    tags = [h.build(images, ctx, [images.tag(str(n))], build_args={"N": f"{token}-{n}"}).image for n in range(1, 6)]
    args = [str(Path(h.RTBUILD)), "prune", "--json", "--keep", "1", "--repo", images.repo]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    assert _present(images.cli, images.repo) == {tags[-1]}
    for tag in tags[:-1]:
        outcomes = [item for report in reports for item in report["items"] if item["name"] == tag]
        assert all(item["error"] is None for item in outcomes) and any(item["removed"] for item in outcomes)


def test_an_image_a_build_reproduced_counts_as_new(images: h.Images, tmp_path: Path, isolated_dirs: Path) -> None:
    """A build whose every step is cached reproduces an earlier image: same ID, same
    ``Created``, tagged anew. Ranked by ``Created`` alone, --keep 1 removed the image the
    last build made (tag 3) and kept the older tag 2; --older-than took it as old too."""
    ctx = _context(tmp_path)
    token = uuid.uuid4().hex[:8]
    first = h.build(images, ctx, [images.tag("1")], build_args={"N": f"{token}-a"}).image
    second = h.build(images, ctx, [images.tag("2")], build_args={"N": f"{token}-b"}).image
    third = h.build(images, ctx, [images.tag("3")], build_args={"N": f"{token}-a"}).image
    info = {tag: h.inspect(images.cli, tag) or {} for tag in (first, second, third)}
    assert info[first]["Id"] == info[third]["Id"] != info[second]["Id"]  # reproduced, every step cached
    assert info[third]["Created"] < info[second]["Created"]
    planned = _prune("--keep", "1", "--repo", images.repo, "--dry-run")
    assert [(item["kind"], item["name"]) for item in planned["items"]] == [("image", second)]  # type: ignore[index]
