"""The API docs: every route documented, the document valid OpenAPI 3.1, the interactive docs
served with no internet, and a property-based run (schemathesis) of the document against the
real app on the real engine."""

from __future__ import annotations

import importlib.util
import re
import socket
import sys
import types
from collections.abc import Iterator
from typing import Any

import falcon
import falcon.inspect
import orjson
import pytest
import schemathesis
from conftest import make_settings, started
from falcon.testing import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import OpenAPIV31SpecValidator
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode

from appliance.api import openapi
from appliance.api.app import FAMILIES, create_app, mount
from appliance.runtime import Runtime

METHODS = {m.upper() for m in openapi.METHODS}


def openapi_path(template: str) -> str:
    """A Falcon route template as an OpenAPI path: ``{id:int}`` → ``{id}``."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", template)


def routes(app: falcon.App) -> set[tuple[str, str]]:
    """(METHOD, path) for every responder a resource defines (not Falcon's defaults)."""
    return {
        (method.method, openapi_path(route.path))
        for route in falcon.inspect.inspect_routes(app)
        for method in route.methods
        if not method.internal and method.method in METHODS
    }


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method.upper() in METHODS
    }


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.simulate_get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json


def test_every_route_is_documented(client: TestClient, document: dict[str, Any]) -> None:
    registered = routes(client.app)
    assert ("GET", "/api/history/{item_id}") in registered  # the walk sees the real table
    missing = sorted(registered - documented(document))
    assert not missing, (
        "routes without OpenAPI docs (add them to the PATHS of their family module; "
        f"see appliance/api/openapi.py): {missing}"
    )
    stale = sorted(documented(document) - registered)
    assert not stale, f"documented but not routed: {stale}"


def test_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(document).validate()
    ids = [op["operationId"] for item in document["paths"].values()
           for m, op in item.items() if m in openapi.METHODS and "operationId" in op]
    assert len(ids) == len(set(ids))


# The modules whose import builds part of the document, those others import first (a module
# executed afresh imports the fresh ones before it).
AFRESH_FIRST = ("schemas", "pagination", "queue_view", "records", "local_files", "downloads",
                "tasks", "flasharr", "ytdlp")


def modules_afresh() -> dict[str, types.ModuleType]:
    """Every module that builds part of the document, executed again from its source into a
    new module object, in an order where each imports the fresh ones it builds on. The path
    items are built once, at import; a test that only asks the app for its document judges
    nothing of what built them (nor does mutation testing, whose workers fork after the
    import)."""
    names = [*AFRESH_FIRST, *(f.__name__.rsplit(".", 1)[1] for f in FAMILIES)]
    names = [*dict.fromkeys(n for n in names if n != "openapi"), "openapi"]
    fresh: dict[str, types.ModuleType] = {}
    kept = {name: sys.modules[f"appliance.api.{name}"] for name in names}
    try:
        for name in names:
            spec = importlib.util.spec_from_file_location(f"appliance.api.{name}",
                                                          kept[name].__file__)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            fresh[name] = sys.modules[f"appliance.api.{name}"] = module
    finally:
        sys.modules.update({f"appliance.api.{name}": module for name, module in kept.items()})
    return fresh


def test_the_document_built_afresh_is_the_one_served_and_valid(
        document: dict[str, Any]) -> None:
    fresh = modules_afresh()
    assert fresh["history"] is not sys.modules["appliance.api.history"]
    built = fresh["openapi"].build(fresh[f.__name__.rsplit(".", 1)[1]] for f in FAMILIES)
    OpenAPIV31SpecValidator(built).validate()
    # What every module's import built: the served document is its source's, whole.
    assert orjson.loads(orjson.dumps(built)) == document


def test_conventions_on_every_operation(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in openapi.METHODS:
                continue
            where = f"{method.upper()} {path}"
            responses = operation["responses"]
            assert "500" in responses, where
            for status, response in responses.items():
                assert "API-Version" in response["headers"], (where, status)
            streamed = set(responses.get("200", {}).get("content", {})) == {
                "text/event-stream"}
            if method == "get" and "200" in responses and not streamed:
                assert "ETag" in responses["200"]["headers"], where
                assert "304" in responses, where
            if "requestBody" in operation:
                assert {"413", "415"} <= responses.keys(), where
            if method in {"post", "put", "patch", "delete"}:  # (ForeignPages refuses them)
                assert "browser page on another origin" in responses["403"]["description"], \
                    where
            for status in {"413", "415", "500"} & responses.keys():
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (where, status)


def test_document_describes_websocket_and_headers(document: dict[str, Any]) -> None:
    assert "/ws" in document["x-websocket"]["paths"]
    assert "item_updated" in document["info"]["description"]
    assert {"API-Version", "ETag"} <= document["components"]["headers"].keys()
    add = document["paths"]["/api/history"]["post"]["requestBody"]["content"]
    schema = add["application/json"]["schema"]["anyOf"]
    assert schema[0] == {"$ref": "#/components/schemas/AddRequest"}
    assert document["components"]["schemas"]["AddRequest"]["required"] == ["url"]


def test_security_documented(document: dict[str, Any]) -> None:
    assert {"basic", "token", "apikey", "cookie"} <= document["components"][
        "securitySchemes"].keys()
    ping = document["paths"]["/api/ping"]["get"]
    assert ping["security"] == [] and "401" not in ping["responses"]
    assert document["paths"]["/api"]["get"]["security"] == []
    history = document["paths"]["/api/history"]["get"]
    assert "security" not in history and "401" in history["responses"]


def test_families_without_paths_are_caught(client: TestClient) -> None:
    """The rule's safety net: a family that registers routes but documents none."""

    class Undocumented:
        __name__ = "undocumented"

        @staticmethod
        def add_routes(app: falcon.App, runtime: Any) -> None:
            app.add_route("/api/undocumented", _Resource())

    class _Resource:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.media = {}

    app = falcon.App()
    Undocumented.add_routes(app, None)
    document = openapi.build([*FAMILIES, Undocumented])  # type: ignore[list-item]
    assert ("GET", "/api/undocumented") in routes(app) - documented(document)
    with pytest.raises(ValueError, match="documented twice"):
        openapi.build([*FAMILIES, FAMILIES[0]])


def test_openapi_json_has_etag(client: TestClient) -> None:
    first = client.simulate_get("/api/openapi.json")
    assert first.headers["API-Version"]
    again = client.simulate_get("/api/openapi.json", headers={"If-None-Match": first.headers[
        "ETag"]})
    assert again.status_code == 304 and not again.content


@pytest.mark.parametrize("path", ["/api/", "/api"])
def test_docs_page_uses_only_local_assets(client: TestClient, path: str) -> None:
    page = client.simulate_get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(link.startswith("/api/docs/assets/") for link in links), links
    assert "//" not in "".join(links)
    assert '"/api/openapi.json"' in page.text and "validatorUrl: null" in page.text
    for link in links:
        asset = client.simulate_get(link)
        assert asset.status_code == 200, link
        assert len(asset.content) > 0
        assert asset.headers["content-type"].split(";")[0] in {
            "text/css", "text/javascript", "image/png"}
    bundle = client.simulate_get("/api/docs/assets/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in bundle and "isOAS31" in bundle  # Swagger UI 5: renders 3.1


@pytest.mark.parametrize("name", [
    "..%2F..%2Fpyproject.toml", "index.css", "swagger-ui.css.map", "%2Fetc%2Fpasswd",
    "..", "swagger-ui.css%00",
])
def test_assets_are_only_known_files(client: TestClient, name: str) -> None:
    response = client.simulate_get(f"/api/docs/assets/{name}")
    assert response.status_code == 404
    assert response.json["code"] == "NOT_FOUND"


def test_docs_under_base_path(runtime: Runtime) -> None:
    client = TestClient(mount(create_app(runtime), "/ytp/"))
    page = client.simulate_get("/ytp/api/")
    assert page.status_code == 200
    assert 'href="/ytp/api/docs/assets/swagger-ui.css"' in page.text
    assert '"/ytp/api/openapi.json"' in page.text
    assert client.simulate_get("/ytp/api/docs/assets/swagger-ui.css").status_code == 200
    assert client.simulate_get("/ytp/api/openapi.json").json["servers"] == [{"url": "/ytp"}]


# --- property-based: the document against the app ---------------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Generated URLs that the app would accept are pointed at a closed local port: the machine has
# no network, and yt-dlp then fails at once (connection refused) instead of resolving random
# host names. URLs the app refuses (not http(s)) are left as generated.
UNREACHABLE = f"http://127.0.0.1:{_closed_port()}/schemathesis"
_WEB_URL = re.compile(r"^\s*https?://", re.IGNORECASE)


def _unreachable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: UNREACHABLE if k == "url" and isinstance(v, str) and _WEB_URL.match(v)
                else _unreachable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unreachable(v) for v in value]
    return value


CONFIG = {
    # The fuzzed runtime has no credentials set, so the service is open and the parameters of
    # the security schemes (Authorization, ?apikey=, the session cookie) that schemathesis adds
    # to every secured operation reach no code: Authenticator.authenticate returns before it
    # reads them (their wrong and forged values are test_auth's). Generated, they only cost
    # time and made an operation with nothing else to vary look breakable (33 cases, not 3).
    "generation": {"database": "none", "with-security-parameters": False},
    "cache": {"enabled": False},
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "response_headers_conformance": {"enabled": True},
    },
}
# Examples per operation: valid input, then input that breaks the documented schema. Bounded
# so that the run stays well under two minutes on two busy cores.
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 8}
# Not run here, each with its reason; every other documented operation is.
SKIPPED = {
    # Changes the running service's real settings, the download folder included (generated
    # absolute paths would be created on this machine); the Flasharr tests cover it.
    ("PUT", "/api/settings"),
    # Failed logins are slowed on purpose (brute-force delay): a fuzz run would only wait.
    ("POST", "/api/auth/login"),
}


_ANNOTATIONS = {"description", "examples", "default", "title"}


def _breakable(operation: Any) -> bool:
    """Whether negative cases exist: a body, or a parameter whose schema something breaks (any
    string is a valid plain-string parameter; Hypothesis would search for seconds in vain)."""
    def constrains(param: dict[str, Any]) -> bool:
        schema = {k: v for k, v in param.get("schema", {}).items() if k not in _ANNOTATIONS}
        return schema != {"type": "string"} or (param["in"] != "path" and param.get("required"))

    return bool(operation.get_request_payload_content_types()) or any(
        constrains(p.definition) for p in operation.iter_parameters())


def _streamed(operation: dict[str, Any]) -> bool:
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    return set(content) == {"text/event-stream"}


def _fuzzed() -> list[tuple[str, str]]:
    """Every documented operation but SKIPPED and the event streams: an event stream answers
    until the client leaves; read in process it never ends (tests of each stream read it over
    a real socket)."""
    document = openapi.build(FAMILIES)
    return sorted((method.upper(), path) for path, item in document["paths"].items()
                  for method, operation in item.items()
                  if method in openapi.METHODS and (method.upper(), path) not in SKIPPED
                  and not _streamed(operation))


FUZZED = _fuzzed()


def _check(operation: Any, mode: GenerationMode) -> None:
    # With nothing to vary (no body, no constrained parameter) a few cases say it all.
    examples = EXAMPLES[mode] if _breakable(operation) else 3

    @given(case=operation.as_strategy(generation_mode=mode))
    # Deterministic (the same cases on every run) and not shrunk: bounded, repeatable time.
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def run(case: Any) -> None:
        if isinstance(case.body, dict | list):
            case.body = _unreachable(case.body)
        if case.query:
            case.query = _unreachable(case.query)
        case.call_and_validate()

    run()


@pytest.fixture(scope="module")
def fuzzed_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The document loaded by schemathesis from one app on one real runtime, shared by the
    operations a worker runs (each xdist worker makes its own)."""
    runtime = started(make_settings(tmp_path_factory.mktemp("fuzzed")))
    try:
        yield schemathesis.openapi.from_wsgi(
            "/api/openapi.json", create_app(runtime), config=SchemathesisConfig.from_dict(CONFIG))
    finally:
        runtime.stop()


def test_every_operation_but_the_skipped_and_the_streams_is_fuzzed() -> None:
    assert len(FUZZED) >= 20 and ("POST", "/api/history") in FUZZED
    assert not SKIPPED & set(FUZZED) and ("GET", "/api/logs/stream") not in FUZZED


@pytest.mark.parametrize(("method", "path"), FUZZED, ids=[" ".join(op) for op in FUZZED])
def test_api_conforms_to_document(fuzzed_schema: Any, method: str, path: str) -> None:
    """Property-based (schemathesis, in process on the WSGI app and the real engine): no 5xx,
    and every status, content type, body and header as documented."""
    operation = fuzzed_schema[path][method]
    failures: list[str] = []
    for mode in EXAMPLES:
        if mode == GenerationMode.NEGATIVE and not _breakable(operation):
            continue
        try:
            _check(operation, mode)
        except Unsatisfiable:  # no schema here that a value can break
            continue
        except (Exception, FailureGroup) as exc:  # FailureGroup: schemathesis's checks
            failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    # Found by the property-based run; each was a 500 before.
    ("DELETE", "/api/history", {"type": ["queue"], "ids": ["x"]}, 400),
    ("DELETE", "/api/history", {"type": "done", "ids": [""]}, 400),
    ("DELETE", "/api/history", {"type": "queue", "ids": ["\u001e"]}, 400),
    ("GET", "/api/history/%1E", None, 404),
    ("POST", "/api/history/%1E", {"title": "x"}, 404),
])
def test_found_by_schemathesis(
    client: TestClient, method: str, path: str, body: Any, status: int
) -> None:
    response = client.simulate_request(
        method, path, json=body) if body is not None else client.simulate_request(method, path)
    assert response.status_code == status, response.text
    assert set(response.json) >= {"error", "code"}


def test_docs_page_has_etag(client: TestClient) -> None:
    page = client.simulate_get("/api/")
    again = client.simulate_get("/api/", headers={"If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304
