"""Where a folder is on its disk, whatever mount it is seen through.

One folder can be reached by many paths that no ``realpath`` joins: a bind mount of it
(``mount --bind /var/lib/appliance/config /srv/media``), a second mount of its disk (the
system's own disk mounted again at ``/mnt/root`` for a backup). The kernel's table of this
process's mounts (``MOUNTINFO``) says, for each mount point, which disk it shows and which of
the disk's folders is its top: so a path is known as (the disk, its path on that disk), the
same through every mount.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

MOUNTINFO = Path("/proc/self/mountinfo")  # the kernel's: read whole, as long as it is


def unescape(field: str) -> str:
    """A field of fstab or of the mount table, its space, tab, newline and backslash written
    as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda octal: chr(int(octal[1], 8)), field)


Place = tuple[str, PurePosixPath]  # (the disk as "major:minor", the path on it)


def mounts() -> list[tuple[PurePosixPath, Place]]:
    """Each mount point and the place its top is, in the table's order (a later mount on the
    same point hides an earlier one); empty when the table cannot be read."""
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as table:
            lines = table.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        # id, parent, major:minor, root, mount point, options, [optional fields…], -, …
        fields = line.split(" ")
        if len(fields) >= 5:
            found.append((PurePosixPath(unescape(fields[4])),
                          (fields[2], PurePosixPath(unescape(fields[3])))))
    return found


def place(path: Path, table: list[tuple[PurePosixPath, Place]]) -> Place:
    """Where ``path`` (absolute, resolved) is: by the deepest mount point above it, the last
    mounted there. Without a table: the path itself, on no disk in particular."""
    best: tuple[PurePosixPath, Place] | None = None
    for point, top in table:
        if path.is_relative_to(point) and (best is None or len(point.parts) >= len(best[0].parts)):
            best = (point, top)
    if best is None:
        return "", PurePosixPath(path)
    point, (disk, root) = best
    return disk, root.joinpath(path.relative_to(point))
