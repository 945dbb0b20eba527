"""``/openapi.json``: fal's queue OpenAPI for the endpoint, generated from :mod:`kinema.schema`.

The pydantic models are the one source of truth; this module only reshapes their JSON Schema
into fal's conventions (component names, ``allOf`` around described refs, optional fields as
plain types) and adds the queue paths and kinema's own routes.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from kinema import ENDPOINT_ID, __version__
from kinema.schema import DynamicMask, File, KlingInput, KlingOutput, Trajectory

__all__ = ["build_openapi", "COMPONENT_NAMES"]

COMPONENT_NAMES = {
    "KlingInput": "KlingVideoV1StandardImageToVideoInput",
    "KlingOutput": "KlingVideoV1StandardImageToVideoOutput",
    "DynamicMask": "DynamicMask",
    "File": "File",
    "Trajectory": "Trajectory",
}
_REF = "#/components/schemas/"


def _reshape(node: Any) -> Any:
    if isinstance(node, list):
        return [_reshape(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _reshape(v) for k, v in node.items()}
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        node["$ref"] = _REF + COMPONENT_NAMES.get(name, name)
        if len(node) > 1:  # a described reference: fal wraps it in allOf
            target = node.pop("$ref")
            node["allOf"] = [{"$ref": target}]
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        non_null = [s for s in any_of if s.get("type") != "null"]
        if len(non_null) == 1 and len(non_null) < len(any_of):
            node.pop("anyOf")
            merged = dict(non_null[0])
            merged.update(node)
            node = merged
            if node.get("default", 0) is None:
                node.pop("default")
    return node


def _schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(m, "validation") for m in (KlingInput, KlingOutput, DynamicMask, File, Trajectory)],
        ref_template=_REF + "{model}",
    )
    defs = top.get("$defs", {})
    return {COMPONENT_NAMES.get(name, name): _reshape(schema) for name, schema in defs.items()}


def _queue_status_schema() -> dict[str, Any]:
    s = {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]},
            "request_id": {**s, "description": "The request id."},
            "response_url": {**s, "description": "The response url."},
            "status_url": {**s, "description": "The status url."},
            "cancel_url": {**s, "description": "The cancel url."},
            "logs": {"type": "object", "description": "The logs.", "additionalProperties": True},
            "metrics": {"type": "object", "description": "The metrics.", "additionalProperties": True},
            "queue_position": {"type": "integer", "description": "The queue position."},
        },
        "required": ["status", "request_id"],
    }


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _REF + ref}}}}


def build_openapi(server_url: str | None = None) -> dict[str, Any]:
    schemas = {"QueueStatus": _queue_status_schema(), **_schemas()}
    rid = {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string", "description": "Request ID"}}
    logs = {"name": "logs", "in": "query", "required": False,
            "schema": {"type": "number", "description": "Whether to include logs (`1`) in the response or not (`0`)."}}
    base = f"/{ENDPOINT_ID}"
    paths: dict[str, Any] = {
        f"{base}/requests/{{request_id}}/status": {
            "get": {"parameters": [rid, logs], "responses": {"200": _json("QueueStatus", "The request status.")}}
        },
        f"{base}/requests/{{request_id}}/cancel": {
            "put": {
                "parameters": [rid],
                "responses": {"200": {"description": "The request was cancelled.", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {"success": {
                        "type": "boolean", "description": "Whether the request was cancelled successfully."}}}}}}},
            }
        },
        base: {
            "post": {
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": _REF + COMPONENT_NAMES["KlingInput"]}}}},
                "responses": {"200": _json("QueueStatus", "The request status.")},
            }
        },
        f"{base}/requests/{{request_id}}": {
            "get": {"parameters": [rid],
                    "responses": {"200": _json(COMPONENT_NAMES["KlingOutput"], "Result of the request.")}}
        },
    }
    doc: dict[str, Any] = {
        "openapi": "3.0.4",
        "info": {"title": "Queue OpenAPI for " + ENDPOINT_ID, "version": "1.0.0",
                 "description": "The OpenAPI schema for the " + ENDPOINT_ID + " queue, served by kinema " + __version__,
                 "x-fal-metadata": {"endpointId": ENDPOINT_ID, "category": "image-to-video"}},
        "components": {
            "securitySchemes": {"apiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                                               "description": "Fal Key"}},
            "schemas": schemas,
        },
        "paths": paths,
        "security": [{"apiKeyAuth": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
