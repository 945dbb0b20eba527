"""``/openapi.json`` matches fal's OpenAPI for the endpoint field for field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kinema.api.openapi import build_openapi

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "kling-1.0-openapi.json"


@pytest.fixture(scope="module")
def fal() -> dict:
    if not SPEC.exists():
        pytest.skip(f"fal's OpenAPI is not beside the repo at {SPEC}")
    return json.loads(SPEC.read_text())["openapi"]


@pytest.fixture(scope="module")
def ours() -> dict:
    return build_openapi("http://127.0.0.1:8000")


NAMES = ["KlingVideoV1StandardImageToVideoInput", "KlingVideoV1StandardImageToVideoOutput", "DynamicMask", "File",
         "Trajectory", "QueueStatus"]


@pytest.mark.parametrize("name", NAMES)
def test_component_schemas_match_field_for_field(fal, ours, name):
    theirs = fal["components"]["schemas"][name]
    mine = ours["components"]["schemas"][name]
    for key in ("type", "title", "required", "x-fal-order-properties"):
        assert mine.get(key) == theirs.get(key), (name, key)
    extra = set(mine["properties"]) - set(theirs["properties"])
    # The only extra input is kinema's documented extension, marked as such.
    assert all(mine["properties"][p].get("x-kinema-extension") for p in extra), extra
    for prop, spec in theirs["properties"].items():
        assert prop in mine["properties"], (name, prop)
        assert mine["properties"][prop] == spec, (name, prop)


def test_paths_match(fal, ours):
    assert set(fal["paths"]) <= set(ours["paths"])
    for path, item in fal["paths"].items():
        assert ours["paths"][path] == item, path
    assert ours["components"]["securitySchemes"] == fal["components"]["securitySchemes"]
