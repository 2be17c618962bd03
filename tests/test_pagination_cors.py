"""FlexGet's conventions laid over the API: RFC 5988 Link pagination with Total-Count and Count
(one helper for every paginated list), and CORS for listed browser origins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import make_settings
from falcon.testing import TestClient
from test_api_history import seed_history

from appliance.api.app import create_app, mount
from appliance.config import SettingsError
from appliance.runtime import Runtime


def links(header: str) -> dict[str, str]:
    """``{rel: url}`` from a Link header."""
    out = {}
    for part in header.split(","):
        target, rel = part.split(";")
        out[rel.strip().removeprefix('rel="').removesuffix('"')] = target.strip()[1:-1]
    return out


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


# --- pagination -------------------------------------------------------------------------


def test_link_header_on_a_multi_page_history(client: TestClient, runtime: Runtime) -> None:
    seed_history(runtime, 25)
    seed_history(runtime, 2, status="error")
    response = client.simulate_get(
        "/api/history", params={"type": "done", "status": "finished", "order": "desc",
                                "per_page": "10", "page": "2"})
    assert response.status_code == 200
    assert response.headers["Total-Count"] == "25"
    assert response.headers["Count"] == "10" == str(len(response.json["items"]))
    rels = links(response.headers["Link"])
    assert set(rels) == {"next", "prev", "last"}
    for rel, page in (("next", "3"), ("prev", "1"), ("last", "3")):
        url = rels[rel]
        assert url.startswith("http://falconframework.org/api/history?")
        # every other parameter is kept as sent; only page changes
        assert query_of(url) == {"type": ["done"], "status": ["finished"], "order": ["desc"],
                                 "per_page": ["10"], "page": [page]}
    # the body keeps the contract's pagination object
    assert response.json["pagination"] == {"page": 2, "per_page": 10, "total": 25,
                                           "total_pages": 3, "has_next": True,
                                           "has_prev": True}


def test_link_header_first_last_and_beyond(client: TestClient, runtime: Runtime) -> None:
    seed_history(runtime, 5)
    first = client.simulate_get("/api/history?type=done&per_page=2")
    rels = links(first.headers["Link"])
    assert set(rels) == {"next", "last"}  # no prev on page 1, no first (always page=1)
    assert query_of(rels["next"])["page"] == ["2"]
    assert query_of(rels["last"]) == {"type": ["done"], "per_page": ["2"], "page": ["3"]}
    last = client.simulate_get("/api/history?type=done&per_page=2&page=3")
    assert set(links(last.headers["Link"])) == {"prev", "last"}
    assert last.headers["Count"] == "1" and last.headers["Total-Count"] == "5"
    beyond = client.simulate_get("/api/history?type=done&per_page=2&page=9")
    rels = links(beyond.headers["Link"])
    assert beyond.headers["Count"] == "0"
    assert query_of(rels["prev"])["page"] == ["3"] and query_of(rels["last"])["page"] == ["3"]
    empty = client.simulate_get("/api/history?type=queue")
    assert empty.headers["Total-Count"] == "0" and empty.headers["Count"] == "0"
    assert set(links(empty.headers["Link"])) == {"last"}


def test_link_header_follows_proxy_and_base_path(runtime: Runtime) -> None:
    seed_history(runtime, 3)
    client = TestClient(mount(create_app(runtime), "/ytp/"))
    response = client.simulate_get(
        "/ytp/api/history", params={"type": "done", "per_page": "1"},
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "media.example"})
    assert links(response.headers["Link"])["next"].startswith(
        "https://media.example/ytp/api/history?")


@pytest.mark.parametrize(("proxies", "peer", "believed"), [
    ("", "192.168.1.20", False),  # a LAN client: anybody can send the headers
    ("", "127.0.0.1", True),  # unset: a reverse proxy on this machine, as gunicorn's default
    ("192.168.1.20", "192.168.1.20", True),
    ("192.168.1.20", "127.0.0.1", False),  # set: only the proxies named
])
def test_only_a_proxy_it_may_believe_names_the_host_of_links_and_redirects(
        start_runtime: Callable[..., Runtime], proxies: str, peer: str, believed: bool) -> None:
    """A stranger's X-Forwarded-Host went into the answer's Link, Location and redirects: a
    shared cache would keep them pointing at the stranger's host for everybody."""
    runtime = start_runtime(YTP_TRUSTED_PROXIES=proxies)
    seed_history(runtime, 3)
    client = TestClient(create_app(runtime))
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "elsewhere.example"}
    listed = client.simulate_get("/api/history", params={"type": "done", "per_page": "1"},
                                 headers=forwarded, remote_addr=peer)
    added = client.simulate_post("/api/downloads", json={"url": "http://127.0.0.1:9/v"},
                                 headers=forwarded, remote_addr=peer)
    assert listed.status_code == 200 and added.status_code == 201, added.text
    prefix = "https://elsewhere.example/" if believed else "http://falconframework.org/"
    assert links(listed.headers["Link"])["next"].startswith(prefix + "api/history?")
    assert added.headers["Location"].startswith(prefix + "api/downloads/")


def test_pagination_headers_survive_etag_revalidation(client: TestClient,
                                                      runtime: Runtime) -> None:
    seed_history(runtime, 3)
    first = client.simulate_get("/api/history?type=done&per_page=2")
    again = client.simulate_get("/api/history?type=done&per_page=2",
                                headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.content
    assert again.headers["Link"] == first.headers["Link"]


def test_if_none_match_compares_weakly_and_takes_a_star(client: TestClient,
                                                      runtime: Runtime) -> None:
    """RFC 9110: If-None-Match compares weakly, and ``*`` matches any answer there is. nginx
    makes a strong ETag weak (``W/"…"``) when it compresses the answer (``gzip on``): behind
    it a client sent back ``W/"…"`` and got the whole answer again, every time."""
    seed_history(runtime, 3)
    first = client.simulate_get("/api/history?type=done")
    tag = first.headers["ETag"]
    assert tag.startswith('"') and tag.endswith('"')
    for condition in (f"W/{tag}", "*", f'"other", W/{tag}', f' "x",{tag} '):
        again = client.simulate_get("/api/history?type=done",
                                    headers={"If-None-Match": condition})
        assert (again.status_code, again.content) == (304, b""), condition
        assert again.headers["ETag"] == tag
    for condition in ('"other"', tag.strip('"'), f"W/{tag[:-2]}\"", ", ,"):
        again = client.simulate_get("/api/history?type=done",
                                    headers={"If-None-Match": condition})
        assert again.status_code == 200 and again.json == first.json, condition


def test_flasharr_list_uses_the_same_helper(client: TestClient, runtime: Runtime) -> None:
    seed_history(runtime, 7)
    response = client.simulate_get("/api/downloads",
                                   params={"status": "completed", "limit": "3", "page": "2"})
    assert response.status_code == 200
    body = response.json
    assert (body["total"], body["page"], body["pages"]) == (7, 2, 3)
    assert response.headers["Total-Count"] == "7" and response.headers["Count"] == "3"
    rels = links(response.headers["Link"])
    assert query_of(rels["next"]) == {"status": ["completed"], "limit": ["3"], "page": ["3"]}
    assert query_of(rels["prev"])["page"] == ["1"]
    assert query_of(rels["last"])["page"] == ["3"]


# --- CORS -------------------------------------------------------------------------------

ALLOWED = "https://app.example"
OTHER_ALLOWED = "http://nas.local:3000"


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.simulate_get("/api/ping", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


def test_cors_allowed_origin(app_with) -> None:
    _rt, client = app_with(YTP_CORS_ORIGINS=f"{ALLOWED}/, {OTHER_ALLOWED}")
    for origin in (ALLOWED, OTHER_ALLOWED):
        response = client.simulate_get("/api/history?type=done", headers={"Origin": origin})
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Origin" in response.headers["Vary"]
        exposed = {h.strip() for h in
                   response.headers["Access-Control-Expose-Headers"].split(",")}
        assert exposed >= {"ETag", "Link", "Total-Count", "Count", "API-Version",
                           "X-Request-ID"}
    # errors carry the headers too, so that the page's script can read them
    missing = client.simulate_get("/api/downloads/nope", headers={"Origin": ALLOWED})
    assert missing.status_code == 404
    assert missing.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_cors_disallowed_origin_gets_no_cors_headers(app_with) -> None:
    _rt, client = app_with(YTP_CORS_ORIGINS=ALLOWED)
    for origin in ("https://evil.example", "https://app.example.evil", "null"):
        response = client.simulate_get("/api/ping", headers={"Origin": origin})
        assert response.status_code == 200
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]
        preflight = client.simulate_options("/api/downloads", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in preflight.headers
        assert "Access-Control-Allow-Methods" not in preflight.headers
    plain = client.simulate_get("/api/ping")
    assert "Access-Control-Allow-Origin" not in plain.headers


@pytest.mark.parametrize("path", ["/api/downloads", "/api/history/some-id", "/api/settings",
                                  "/api/ping", "/api/not/a/route"])
def test_cors_preflight_on_every_route(app_with, path: str) -> None:
    _rt, client = app_with(YTP_CORS_ORIGINS=ALLOWED)
    response = client.simulate_options(path, headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert response.status_code == 204, response.text
    assert not response.content
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "PUT" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, authorization"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["API-Version"]


def test_only_an_options_request_asking_for_a_method_is_a_preflight(app_with) -> None:
    """A GET that carries Access-Control-Request-Method gets its answer; an OPTIONS without
    it is not answered as a preflight."""
    _rt, client = app_with(YTP_CORS_ORIGINS=ALLOWED)
    asking = {"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}
    got = client.simulate_get("/api/ping", headers=asking)
    assert got.status_code == 200 and got.json == {"status": "pong"}
    assert "Access-Control-Allow-Methods" not in got.headers
    plain = client.simulate_options("/api/ping", headers={"Origin": ALLOWED})
    assert plain.status_code != 204
    assert "Access-Control-Allow-Methods" not in plain.headers


def test_cors_preflight_needs_no_credentials(app_with) -> None:
    _rt, client = app_with(YTP_CORS_ORIGINS=ALLOWED, YTP_AUTH_USERNAME="me",
                           YTP_AUTH_PASSWORD="secret-password")
    preflight = client.simulate_options("/api/downloads", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204
    refused = client.simulate_get("/api/downloads", headers={"Origin": ALLOWED})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.parametrize("value", ["*", "app.example", "https://app.example/path",
                                   "ftp://app.example"])
def test_cors_origins_setting_is_checked(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="YTP_CORS_ORIGINS"):
        make_settings(tmp_path, YTP_CORS_ORIGINS=value)


def test_cors_origins_setting_parses_a_list(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, YTP_CORS_ORIGINS=" https://A.example/ ,,http://b:8080")
    assert settings.cors_origins == ("https://a.example", "http://b:8080")
    assert make_settings(tmp_path).cors_origins == ()
