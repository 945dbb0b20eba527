"""``/openapi.json`` matches fal's OpenAPI for the endpoint field for field, and says what the server does.

Deliberate differences from fal's published document (each one checked against a running server below):
``nullable: true`` on optional fields that accept null, ``QueueStatus.logs`` as a list, the status/error fields
of failed requests, cancel's real 202/400/404 bodies instead of a 200 fal's queue never sends.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from server import running_server

from kinema.api.openapi import build_openapi

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "kling-1.0-openapi.json"
ALIAS = "/fal-ai/kling-video"
ENDPOINT = "/fal-ai/kling-video/v1/standard/image-to-video"


@pytest.fixture(scope="module")
def fal() -> dict:
    if not SPEC.exists():
        pytest.skip(f"fal's OpenAPI is not beside the repo at {SPEC}")
    return json.loads(SPEC.read_text())["openapi"]


@pytest.fixture(scope="module")
def ours() -> dict:
    return build_openapi("http://127.0.0.1:8000")


NAMES = [
    "KlingVideoV1StandardImageToVideoInput",
    "KlingVideoV1StandardImageToVideoOutput",
    "DynamicMask",
    "File",
    "Trajectory",
    "QueueStatus",
]
#: Properties kinema lists that fal's document does not, though fal's queue sends them too.
DOCUMENTED_EXTRAS = {"QueueStatus": {"error", "error_type"}}
#: Properties whose fal description is wrong about what is sent.
CORRECTED = {("QueueStatus", "logs")}


def _without_nullable(schema: dict) -> dict:
    return {k: v for k, v in schema.items() if k != "nullable"}


@pytest.mark.parametrize("name", NAMES)
def test_component_schemas_match_field_for_field(fal, ours, name):
    theirs = fal["components"]["schemas"][name]
    mine = ours["components"]["schemas"][name]
    for key in ("type", "title", "required", "x-fal-order-properties"):
        assert mine.get(key) == theirs.get(key), (name, key)
    extra = set(mine["properties"]) - set(theirs["properties"]) - DOCUMENTED_EXTRAS.get(name, set())
    # The only other extras are kinema's documented extensions, marked as such.
    assert all(mine["properties"][p].get("x-kinema-extension") for p in extra), extra
    for prop, spec in theirs["properties"].items():
        assert prop in mine["properties"], (name, prop)
        if (name, prop) not in CORRECTED:
            assert _without_nullable(mine["properties"][prop]) == spec, (name, prop)


def test_logs_is_a_list_of_entries(ours):
    logs = ours["components"]["schemas"]["QueueStatus"]["properties"]["logs"]
    assert logs["type"] == "array" and logs["nullable"] is True
    assert logs["items"]["required"] == ["message", "level", "source", "timestamp"]


def test_paths_match(fal, ours):
    assert set(fal["paths"]) <= set(ours["paths"])
    for path, item in fal["paths"].items():
        for method, op in item.items():
            mine = ours["paths"][path][method]
            assert mine.get("parameters") == op.get("parameters"), (path, method)
            assert mine.get("requestBody") == op.get("requestBody"), (path, method)
            for code, response in op["responses"].items():
                if path.endswith("/cancel") and code == "200":
                    continue  # fal's queue answers 202/400/404, never this 200
                assert mine["responses"][code] == response, (path, method, code)
    assert ours["components"]["securitySchemes"] == fal["components"]["securitySchemes"]
    cancel = ours["paths"][f"{ENDPOINT}/requests/{{request_id}}/cancel"]["put"]["responses"]
    assert "200" not in cancel and {"202", "400", "404"} <= set(cancel)
    # The owner/alias forms the clients use are listed with the same operations.
    for tail in ("/requests/{request_id}/status", "/requests/{request_id}/cancel", "/requests/{request_id}"):
        assert ours["paths"][ALIAS + tail] == ours["paths"][ENDPOINT + tail]


# Against a running server ------------------------------------------------------------------------------------
def _ref(doc: dict, schema: dict) -> dict:
    ref = schema.get("$ref") or (schema.get("allOf") or [{}])[0].get("$ref")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def _response_schema(doc: dict, path: str, method: str, code: int) -> dict:
    responses = doc["paths"][path][method]["responses"]
    assert str(code) in responses, f"{method.upper()} {path} answered {code}, which the document does not list"
    return _ref(doc, responses[str(code)]["content"]["application/json"]["schema"])


def _conforms(doc: dict, schema: dict, value: Any) -> None:
    """A small check of ``value`` against ``schema`` (types, required, enums, nullable): enough for these bodies."""
    schema = _ref(doc, schema)
    if value is None:
        assert schema.get("nullable"), ("null where the schema does not allow it", schema)
        return
    kind = schema.get("type")
    expected = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
    }.get(kind)
    if expected is not None:
        assert isinstance(value, expected), (value, schema)
    if "enum" in schema:
        assert value in schema["enum"], (value, schema["enum"])
    if kind == "object":
        for name in schema.get("required", []):
            assert name in value, (name, value)
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _conforms(doc, sub, value[name])
    if kind == "array":
        for item in value:
            _conforms(doc, schema["items"], item)


def test_running_server_does_what_its_document_says(tmp_path, photo_uri):
    with running_server(tmp_path, engine="tests/engines/slow.py:render") as server:
        doc = httpx.get(server.url + "/openapi.json").json()
        base = server.url
        cancel_path = f"{ALIAS}/requests/{{request_id}}/cancel"
        queued = []

        # Nullable fields accept null; every other field refuses it with a 422.
        inputs = doc["components"]["schemas"]["KlingVideoV1StandardImageToVideoInput"]["properties"]
        for name, schema in inputs.items():
            payload = {"prompt": "a wave", "image_url": photo_uri, name: None}
            r = httpx.post(base + ENDPOINT, json=payload, headers=server.headers, timeout=30)
            if schema.get("nullable"):
                assert r.status_code == 200, (name, r.text)
                _conforms(doc, _response_schema(doc, ENDPOINT, "post", 200), r.json())
                queued.append(r.json())
            else:
                assert r.status_code == 422, (name, r.status_code)
                _conforms(doc, _response_schema(doc, ENDPOINT, "post", 422), r.json())
                assert r.json()["detail"][0]["loc"] == ["body", name]

        assert len(queued) >= 3  # tail_image_url, static_mask_url, dynamic_masks (and seed)
        # Inside a dynamic mask: null is a type error where the schema does not allow it, and where it does,
        # null means the same as leaving the field out.
        mask = doc["components"]["schemas"]["DynamicMask"]["properties"]
        for name, schema in mask.items():
            entry = {"mask_url": photo_uri, "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}
            omitted = {k: v for k, v in entry.items() if k != name}
            got = [
                httpx.post(
                    base + ENDPOINT,
                    headers=server.headers,
                    timeout=30,
                    json={"prompt": "x", "image_url": photo_uri, "dynamic_masks": [m]},
                )
                for m in ({**entry, name: None}, omitted)
            ]
            assert all(r.status_code == 422 for r in got), name
            null_errors = got[0].json()["detail"]
            if schema.get("nullable"):
                assert null_errors == got[1].json()["detail"], name
            else:
                assert null_errors[0]["loc"] == ["body", "dynamic_masks", 0, name]
                assert null_errors[0]["type"].endswith("_type"), null_errors
        for job in queued:
            r = httpx.put(job["cancel_url"], headers=server.headers)
            assert r.status_code == 202
            _conforms(doc, _response_schema(doc, cancel_path, "put", 202), r.json())

        # A job's status (with logs), result and cancel bodies follow the document.
        sub = httpx.post(
            base + ENDPOINT, json={"prompt": "a wave", "image_url": photo_uri}, headers=server.headers
        ).json()
        status_path = f"{ALIAS}/requests/{{request_id}}/status"
        early = httpx.get(sub["response_url"], headers=server.headers)
        _conforms(
            doc, _response_schema(doc, f"{ALIAS}/requests/{{request_id}}", "get", early.status_code), early.json()
        )
        deadline = time.monotonic() + 90
        codes = set()
        while True:
            r = httpx.get(sub["status_url"], params={"logs": "1"}, headers=server.headers)
            _conforms(doc, _response_schema(doc, status_path, "get", r.status_code), r.json())
            codes.add(r.status_code)
            if r.json()["status"] == "COMPLETED":
                break
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert codes == {202, 200}
        logs = r.json()["logs"]
        assert (
            isinstance(logs, list) and logs and all(set(e) == {"message", "level", "source", "timestamp"} for e in logs)
        )
        no_logs = httpx.get(sub["status_url"], headers=server.headers).json()
        _conforms(doc, _response_schema(doc, status_path, "get", 200), no_logs)
        assert no_logs["logs"] is None

        result = httpx.get(sub["response_url"], headers=server.headers)
        _conforms(
            doc, _response_schema(doc, f"{ALIAS}/requests/{{request_id}}", "get", result.status_code), result.json()
        )
        done = httpx.put(sub["cancel_url"], headers=server.headers)
        assert done.status_code == 400
        _conforms(doc, _response_schema(doc, cancel_path, "put", 400), done.json())
        unknown = httpx.put(f"{base}{ALIAS}/requests/0123456789abcdef/cancel", headers=server.headers)
        assert unknown.status_code == 404
        _conforms(doc, _response_schema(doc, cancel_path, "put", 404), unknown.json())
        anonymous = httpx.get(sub["status_url"])
        assert anonymous.status_code == 401
        _conforms(doc, _response_schema(doc, status_path, "get", 401), anonymous.json())
        missing = httpx.get(f"{base}{ALIAS}/requests/0123456789abcdef", headers=server.headers)
        assert missing.status_code == 404
        _conforms(doc, _response_schema(doc, f"{ALIAS}/requests/{{request_id}}", "get", 404), missing.json())
