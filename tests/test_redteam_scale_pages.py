"""The history's last pages on a big history: what SQLite walks for a page does not grow with
the page's depth. An OFFSET is walked entry by entry, and the last page of 100,000 items
walked 99,950 of them (18-35 ms at each request; page 1: 3-5 ms): a page past the middle is
read from the other end now. The work is counted in SQLite's own steps (its progress
handler), not timed."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import pytest
from pony import orm

from appliance.store import Item, ItemStore, StatusFilter
from appliance.store.records import DONE, QUEUE, new_id
from appliance.store.search import TextSearch

COUNT = 3_000
PER_PAGE = 50
SMALL = 5  # a page whose rows cost little beside the walk to it


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ItemStore]:
    kept = ItemStore(tmp_path_factory.mktemp("pages") / "appliance.db")
    rng = random.Random(17)
    items = []
    for n in range(COUNT):
        stamp = kept.stamp()
        items.append(Item(
            id=new_id(), url=f"https://media.example/watch?v={n:07d}", kind=DONE,
            status="finished" if rng.random() < 0.8 else "error", title=f"Item number {n}",
            created_at=stamp, updated_at=stamp, batch_id="" if n % 5 else f"batch-{n // 50}"))
    kept.insert(items)
    # items of the queue are no part of the history's pages
    kept.insert([Item(id=new_id(), url=f"https://q.example/{n}", kind=QUEUE,
                      created_at=kept.stamp()) for n in range(40)])
    yield kept
    kept.close()


def _steps(store: ItemStore, read: object) -> int:
    """SQLite's virtual machine steps (in hundreds) that ``read()`` took on this thread's
    connection (Pony keeps one per thread)."""
    with orm.db_session:
        connection = store.db.get_connection()
    taken = [0]

    def count() -> int:
        taken[0] += 1
        return 0

    connection.set_progress_handler(count, 100)
    try:
        read()  # type: ignore[operator]
    finally:
        connection.set_progress_handler(None, 100)
    return taken[0]


def _all(store: ItemStore, newest_first: bool, status: StatusFilter | None,
         search: TextSearch | None = None) -> list[str]:
    """Every id of the list, in its order, read in one page."""
    page = store.page(DONE, 1, 10_000, newest_first=newest_first, status=status, search=search)
    return [item.id for item in page.items]


FILTERS = [None, StatusFilter("finished"), StatusFilter("finished", exclude=True),
           StatusFilter("error")]


@pytest.mark.parametrize("newest_first", [True, False])
@pytest.mark.parametrize("status", FILTERS)
def test_every_page_holds_what_the_list_holds_there(store: ItemStore, newest_first: bool,
                                                    status: StatusFilter | None) -> None:
    """Pages past the middle, the last one partial, read from the other end, hold the same
    items in the same order as the whole list read at once."""
    whole = _all(store, newest_first, status)
    pages = math.ceil(len(whole) / PER_PAGE)
    for number in [1, 2, pages // 2, pages // 2 + 1, pages - 1, pages]:
        page = store.page(DONE, number, PER_PAGE, newest_first=newest_first, status=status)
        assert [i.id for i in page.items] == whole[(number - 1) * PER_PAGE:number * PER_PAGE]
        assert page.total == len(whole)


def test_a_searchs_deep_pages_hold_what_it_finds_there(store: ItemStore) -> None:
    search = TextSearch.parse("number")  # every item: its pages walk the list
    for newest_first in (True, False):
        whole = _all(store, newest_first, None, search)
        assert len(whole) == COUNT
        for number in (COUNT // PER_PAGE - 1, COUNT // PER_PAGE):
            page = store.page(DONE, number, PER_PAGE, newest_first=newest_first, search=search)
            assert [i.id for i in page.items] == whole[(number - 1) * PER_PAGE:
                                                       number * PER_PAGE]


@pytest.mark.parametrize("newest_first", [True, False])
@pytest.mark.parametrize("status", FILTERS)
def test_the_last_page_walks_no_more_than_the_first(store: ItemStore, newest_first: bool,
                                                    status: StatusFilter | None) -> None:
    total = store.page(DONE, 1, 1, status=status).total
    last = math.ceil(total / SMALL)

    def page(number: int) -> object:
        return lambda: store.page(DONE, number, SMALL, newest_first=newest_first,
                                  status=status)

    first, deepest = _steps(store, page(1)), _steps(store, page(last))
    # (the bound leaves room for the index's shape, not for a walk of the list)
    assert deepest <= 2 * first, (first, deepest)


def test_flasharrs_last_page_walks_no_more_than_its_first(store: ItemStore) -> None:
    """Flasharr's downloads list pages the history the same way (``window``)."""
    total = store.window(DONE, 0, 1, statuses=["finished"])[1]
    first = _steps(store, lambda: store.window(DONE, 0, SMALL, statuses=["finished"]))
    deepest = _steps(store, lambda: store.window(DONE, total - SMALL, SMALL,
                                                 statuses=["finished"]))
    assert deepest <= 2 * first, (first, deepest)
    whole = [i.id for i in store.window(DONE, 0, 10_000, statuses=["finished"])[0]]
    assert [i.id for i in store.window(DONE, total - 30, PER_PAGE, statuses=["finished"])[0]
            ] == whole[-30:]
