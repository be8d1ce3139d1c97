"""The extended attributes of a context entry that reach the image, as digest-line text.

Docker 20.10's BuildKit copies a context entry's ``user.*`` and ``trusted.*`` attributes
into the image layer (files and directories; checked on the engine's overlay2 layer), and
drops ``security.capability``; ``security.*`` (SELinux labels too) and ``system.*`` are
the host's, not the context's, and are left out. An entry with none of them keeps the
digest line it always had: no attribute, no text, so such contexts keep their digests.
"""

from __future__ import annotations

import os

#: What starts each attribute in a digest line (a NUL: no path or link target holds one).
XATTR_MARK = "\0x"
_COPIED = ("user.", "trusted.")


def xattrs(target: int | str) -> str:
    """``\\0x<name hex>=<value hex>`` per copied attribute of ``target`` (an open descriptor,
    or a path not followed when it is a link), in name order; ``""`` when it has none or its
    filesystem keeps none. One ``listxattr`` call for an entry without attributes."""
    follow = not isinstance(target, str)
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError:
        return ""  # no attributes on this filesystem (ENOTSUP), or gone (the walk notices)
    if not names:
        return ""
    parts = []
    for name in sorted(names):
        if not name.startswith(_COPIED):
            continue
        try:
            value = os.getxattr(target, name, follow_symlinks=follow)
        except OSError:
            continue  # removed since listed, or unreadable to the client as well
        raw = name.encode("utf-8", "surrogateescape")
        parts.append(f"{XATTR_MARK}{raw.hex()}={value.hex()}")
    return "".join(parts)


__all__ = ["XATTR_MARK", "xattrs"]
