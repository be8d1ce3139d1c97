"""The builder guide says who enforces build_timeout. A builder that runs its engine without
rtbuild.enginekit.run_build is not stopped by the core: --build-timeout 2 let a 30 s build
succeed (exit 0, no word), and the guide never said a builder must read
config.build_timeout itself."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_guide_says_a_builder_without_run_build_bounds_its_build_itself() -> None:
    page = (REPO / "docs" / "writing-a-builder.md").read_text(encoding="utf-8")
    rules = page[page.index("## Rules of thumb") :]
    assert "`build_timeout` (`--build-timeout`, `RTBUILD_BUILD_TIMEOUT`) is enforced by" in rules
    assert "`config.build_timeout`" in rules and "has no effect on your builds" in rules
