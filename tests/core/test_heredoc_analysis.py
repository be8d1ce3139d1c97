"""Here-documents (``RUN <<EOF``, ``COPY <<EOF /file``: BuildKit's Dockerfile 1.4 syntax,
the default frontend since Docker 23) are not instructions: dockerfile-parse read their
lines as such, so ``COPY <<EOF /init.sql`` with a ``FROM users;`` line made ``users;`` a
base image to look up, and the build failed before the engine started. (Analysis only:
this machine's Docker 20.10 and Podman 4.3 do not parse here-documents without a ``# syntax``
frontend image, which needs the network.)"""

from __future__ import annotations

import pytest
from rtbuild.enginekit._inputs import analyse


@pytest.mark.parametrize(
    ("dockerfile", "images"),
    [
        ("FROM busybox\nCOPY <<EOF /init.sql\nSELECT *\nFROM users;\nEOF\nFROM debian\n", ["busybox", "debian"]),
        ("FROM busybox\nRUN <<EOF\nFROM alpine\nEOF\n", ["busybox"]),
        ("FROM busybox\nrun python3 <<'PY'\nFROM = 1\nPY\nFROM last\n", ["busybox", "last"]),
        # <<- strips leading tabs from the body and from the end word
        ("FROM busybox\nRUN <<-EOT bash\n\tFROM x\n\tEOT\nCOPY --from=alpine /a /b\n", ["busybox", "alpine"]),
        # several in one instruction: their bodies follow one another
        ('FROM busybox\nCOPY <<A <<"B" /d/\nFROM a1\nA\nFROM b1\nB\nFROM c1\n', ["busybox", "c1"]),
        # the marker on a continued instruction: the body follows its last line
        ("FROM busybox\nRUN cat <<EOF > /x \\\n && true\nFROM inbody\nEOF\nFROM after\n", ["busybox", "after"]),
        # not here-documents: quoted, on another instruction, in exec form, no space before
        ('FROM busybox\nRUN echo "x <<b"\nFROM c2\nb\n', ["busybox", "c2"]),
        ("FROM busybox\nLABEL x=<<EOF\nFROM label\n", ["busybox", "label"]),
        ('FROM busybox\nRUN ["sh", "-c", "cat <<EOF"]\nFROM exec\n', ["busybox", "exec"]),
        ("FROM busybox\nRUN echo a<<b\nFROM glued\n", ["busybox", "glued"]),
        # a line the shell cannot split: no body skipped (a skipped FROM could go unwatched)
        ('FROM busybox\nRUN echo "unbalanced <<EOF\nFROM ub\n', ["busybox", "ub"]),
    ],
)
def test_heredoc_bodies_name_no_images(dockerfile: str, images: list[str]) -> None:
    assert analyse(dockerfile, {}).images == images
