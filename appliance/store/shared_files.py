"""Whether items share a file: one an item records that another records too (a download by
hand that yt-dlp then found on disk for another item), perhaps under another name (another
download folder's, a case-insensitive folder's spelling of it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pony import orm

from .database import read_session
from .records import Item

# A filename's last part in SQL: what follows its last "/" (rtrim strips every character but
# "/" from its end, leaving its folders).
_LAST_PART = "substr(filename, length(rtrim(filename, replace(filename, '/', ''))) + 1)"


def _last_part(filename: str) -> str:
    return filename.rpartition("/")[2]


def _same_file(one: Path, other: Path) -> bool:
    """Whether two names are one file (a case-insensitive folder's two spellings of it)."""
    try:
        return one.is_absolute() and other.is_absolute() and one.samefile(other)
    except OSError:
        return False


def sharing_a_file(db: orm.Database, leaving: Sequence[Item]) -> set[str]:
    """The ids of ``leaving`` items whose file an item not among them records too (a
    download by hand that yt-dlp then found on disk for another item): a file both have
    is the other's as much."""
    return set(holders(db, leaving))


def sharing_with(db: orm.Database, item: Item) -> set[str]:
    """The ids of the other items that record ``item``'s file."""
    return holders(db, [item]).get(item.id, set())


def holders(db: orm.Database, items: Sequence[Item]) -> dict[str, set[str]]:
    """For each of ``items`` with a file an item not among them records too, those items'
    ids. Each may name it from another download folder, one the settings named before (the
    folder moved into a folder of the old one, or out of it: ``chan/a.mp4`` in one is
    ``a.mp4`` in the other), so the names are matched on their last part and judged as
    files."""
    names = sorted({_last_part(i.filename) for i in items if i.filename})
    ids = {i.id for i in items}
    if not names:
        return {}
    marks = ", ".join(f"$n{n}" for n in range(len(names)))
    with read_session(db):
        # NOCASE: on an exFAT or SMB download folder "Show.mp4" and "show.mp4" are one
        # file (yt-dlp found it there under a title whose case had changed)
        rows = db.select(
            "SELECT id, download_folder, filename FROM items "
            f"WHERE {_LAST_PART} COLLATE NOCASE IN ({marks})",
            {f"n{n}": name for n, name in enumerate(names)})
    by_name: dict[str, list[tuple[str, str, str]]] = {}
    for item_id, folder, name in rows:
        if item_id not in ids:
            by_name.setdefault(_last_part(name).lower(), []).append((item_id, folder, name))

    def holding(item: Item) -> set[str]:
        file = Path(item.download_folder, item.filename)
        return {other for other, folder, name in by_name.get(_last_part(item.filename).lower(), ())
                if (folder, name) == (item.download_folder, item.filename)
                or _same_file(file, Path(folder, name))}

    return {i.id: found for i in items if i.filename and (found := holding(i))}
