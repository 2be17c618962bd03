"""``GET /api/history?search=``: words in the title or URL, in any case, taken literally,
with the usual pagination and filters (falcon.testing on a real runtime and SQLite)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient

from appliance.api.app import create_app
from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store import items as item_store
from appliance.store.records import new_id
from appliance.store.search import TextSearch

TITLES = ["Ärger im Büro", "100% cotton_shirt", 'She said "hi" AND left', "Cat video one",
          "cat video two", "Dogs (NEAR cats*)", r"back\slash", "plain", "Öl-Preise"]


def seed(runtime: Runtime, titles: list[str], status: str = "finished") -> list[Item]:
    items = [Item(id=new_id(), url=f"https://media.example/watch?v={n:04d}", kind="done",
                  status=status, title=title, created_at=runtime.store.stamp())
             for n, title in enumerate(titles)]
    runtime.store.insert(items)
    return items


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    """One runtime whose history holds TITLES, for the searches that only read it."""
    for runtime in runtime_of_module(tmp_path_factory, "searched"):
        seed(runtime, TITLES)
        yield runtime, TestClient(create_app(runtime))


def search(client: TestClient, words: str, **params: Any) -> dict[str, Any]:
    response = client.simulate_get("/api/history", params={"type": "done", "search": words,
                                                           **params})
    assert response.status_code == 200, response.text
    return response.json


def titles(body: dict[str, Any]) -> list[str]:
    return [i["title"] for i in body["items"]]


@pytest.mark.parametrize(("words", "found"), [
    ("ärger", ["Ärger im Büro"]),  # Unicode case folding
    ("BÜRO ÄRGER", ["Ärger im Büro"]),  # every word, in any order
    ("CAT video", ["cat video two", "Cat video one"]),
    ("100%", ["100% cotton_shirt"]),
    ("%", ["100% cotton_shirt"]),  # LIKE's wildcards are plain characters
    ("n_s", ["100% cotton_shirt"]),
    ("_", ["100% cotton_shirt"]),
    ('"hi"', ['She said "hi" AND left']),  # FTS5 syntax is plain characters too
    ("AND", ['She said "hi" AND left']),
    ("(NEAR cats*)", ["Dogs (NEAR cats*)"]),
    ("\\", [r"back\slash"]),
    ("v=0007", ["plain"]),  # the URL
    ("ca", ["Dogs (NEAR cats*)", "cat video two", "Cat video one"]),  # short: read with LIKE
    ("zzz", []),
    ("' OR 1=1 --", []),
    # Short words are read with LIKE on SQLite's lower(), which folds ASCII only: neither
    # the title's own "Öl" nor "öl" found it.
    ("Öl", ["Öl-Preise"]),
    ("öl", ["Öl-Preise"]),
    ("ÖL", ["Öl-Preise"]),
    ("Ö", ["Öl-Preise"]),
    ("Öl preise", ["Öl-Preise"]),
    ("c a t o video", ["cat video two", "Cat video one"]),  # four short words, and a long one
    ("ca ca ca ca ca ca", ["Dogs (NEAR cats*)", "cat video two", "Cat video one"]),  # one word
])
@pytest.mark.parametrize("indexed", [True, False], ids=["index", "no-index"])
def test_search_finds_words_literally(searched: tuple[Runtime, TestClient],
                                      monkeypatch: pytest.MonkeyPatch, words: str,
                                      found: list[str], indexed: bool) -> None:
    runtime, client = searched
    # Without the index (an SQLite before 3.34: no trigram tokenizer) every word is LIKE.
    monkeypatch.setattr(runtime.store, "_search_indexed", indexed)
    body = search(client, words)
    assert titles(body) == found
    assert body["pagination"]["total"] == len(found)


def test_a_word_of_many_cased_letters_read_without_the_index(runtime: Runtime,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """Looked for in at most MAX_FORMS case forms: past that, as typed and in lower case."""
    monkeypatch.setattr(runtime.store, "_search_indexed", False)
    upper, lower = seed(runtime, ["ÄÖÜÉ upper", "äöüé lower"])
    for words, found in [("ÄÖÜÉ", [upper, lower]), ("äöüé", [lower]), ("ÄöÜé", [lower]),
                         ("ÄÖ", [upper, lower])]:
        page = runtime.store.page("done", 1, 10, newest_first=False,
                                  search=TextSearch.parse(words))
        assert [i.id for i in page.items] == [i.id for i in found], words


@pytest.mark.parametrize("sorted_up_to", [5000, 2])
def test_search_pages_filters_and_orders(client: TestClient, runtime: Runtime,
                                         monkeypatch: pytest.MonkeyPatch,
                                         sorted_up_to: int) -> None:
    # Both ways of reading a page: the matches sorted, and the index walked (many matches).
    monkeypatch.setattr(item_store, "SORT_MATCHES_UP_TO", sorted_up_to)
    wanted = seed(runtime, [f"Wanted clip {n}" for n in range(7)])
    seed(runtime, [f"other clip {n}" for n in range(5)])
    seed(runtime, [f"Wanted failure {n}" for n in range(3)], status="error")
    body = search(client, "wanted", per_page=4, page=2)
    assert body["pagination"] == {"page": 2, "per_page": 4, "total": 10, "total_pages": 3,
                                  "has_next": True, "has_prev": True}
    assert titles(body) == ["Wanted clip 5", "Wanted clip 4", "Wanted clip 3", "Wanted clip 2"]
    oldest = search(client, "wanted clip", per_page=2, order="ASC")
    assert [i["id"] for i in oldest["items"]] == [wanted[0].id, wanted[1].id]
    errors = search(client, "wanted", status="error", per_page=100)
    assert titles(errors) == ["Wanted failure 2", "Wanted failure 1", "Wanted failure 0"]
    finished = search(client, "wanted", status="!error", per_page=100)
    assert finished["pagination"]["total"] == 7
    assert search(client, "wanted", page=9)["items"] == []
    assert search(client, "   ", per_page=100)["pagination"]["total"] == 15  # no words: all


def test_search_follows_renames_and_deletions(client: TestClient, runtime: Runtime) -> None:
    first, second = seed(runtime, ["Old name", "Keep me"])
    # Counted once before each change: a total the store keeps must follow the change.
    assert search(client, "old name")["pagination"]["total"] == 1
    assert search(client, "keep")["pagination"]["total"] == 1
    renamed = client.simulate_post(f"/api/history/{first.id}", body=json.dumps(
        {"title": "Brand new name"}), headers={"Content-Type": "application/json"})
    assert renamed.status_code == 200, renamed.text
    assert search(client, "old name")["pagination"]["total"] == 0
    assert titles(search(client, "brand new")) == ["Brand new name"]
    deleted = client.simulate_delete("/api/history", body=json.dumps(
        {"type": "done", "ids": [second.id]}), headers={"Content-Type": "application/json"})
    assert deleted.json == {second.id: "deleted"}
    assert search(client, "keep")["pagination"]["total"] == 0


def test_search_in_queue(client: TestClient) -> None:
    assert client.simulate_post("/api/system/pause").status_code == 200
    response = client.simulate_post("/api/history", body=json.dumps(
        [{"url": "https://media.invalid/Find-Me", "auto_start": False},
         {"url": "https://media.invalid/other", "auto_start": False}]),
        headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    body = client.simulate_get("/api/history", params={"type": "queue",
                                                       "search": "find-ME"}).json
    assert [i["url"] for i in body["items"]] == ["https://media.invalid/Find-Me"]
    assert body["pagination"]["total"] == 1


@pytest.mark.parametrize(("query", "text"), [
    ({"search": "x" * 201}, "search must be at most 200 characters."),
    ({"search": "a\x00b"}, "search must not contain control characters."),
    ({"search": "a\x1bb"}, "search must not contain control characters."),
    ({"type": "all", "search": "x"}, "search needs type=queue or type=done."),
    # Each short word is a read of every item it may be in: 45 of them held a request
    # thread 3 s at 100,000 items.
    ({"search": "ht tt tp ps s:"}, "search may hold at most 4 words shorter than 3 "
                                   "characters (each is looked for in every item)."),
    ({"search": "a b c d e ffff"}, "search may hold at most 4 words shorter than 3 "
                                   "characters (each is looked for in every item)."),
])
def test_search_refused(searched: tuple[Runtime, TestClient], query: dict[str, str],
                        text: str) -> None:
    response = searched[1].simulate_get("/api/history", params={"type": "done", **query})
    assert response.status_code == 400
    assert response.json["error"] == text


def test_no_words_is_no_search() -> None:
    assert TextSearch.parse("") is None and TextSearch.parse(None) is None
    assert TextSearch.parse(" \t ") is None
    assert TextSearch.parse("a  b a") == TextSearch(("a", "b"))
