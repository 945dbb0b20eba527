"""``/openapi.json``: fal's queue OpenAPI for the endpoint, generated from :mod:`kinema.schema`.

The pydantic models are the one source of truth; this module only reshapes their JSON Schema
into fal's conventions (component names, ``allOf`` around described refs, optional fields as
plain types) and adds the queue paths.

Where fal's published document and the server's behaviour differ, the document says what the server
does, and every property fal describes is otherwise kept as fal writes it:

* optional fields that accept ``null`` (as fal's own server does) carry ``nullable: true``;
* ``QueueStatus.logs`` is a list of log entries (or ``null``), not an object; ``error``/``error_type``
  (failed requests) and ``progress`` (a kinema extension) are listed;
* cancel answers 202/400/404 with ``{"status": …}`` (fal's document shows a 200 ``{"success"}`` that
  fal's queue does not send); status answers 202 while waiting; 401/404/413/422 bodies are described;
* the owner/alias paths (``/fal-ai/kling-video/requests/…``) that the clients use are listed beside the
  full-path forms fal's document lists.
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
            node["nullable"] = True  # the server accepts null here (fal's document leaves this out)
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
    log_entry = {
        "type": "object",
        "properties": {
            "message": s,
            "level": {"type": "string", "enum": ["STDERR", "STDOUT", "ERROR", "INFO", "WARN", "DEBUG"]},
            "source": {"type": "string", "enum": ["USER"]},
            "timestamp": {"type": "string", "description": "ISO 8601 time of the entry."},
        },
        "required": ["message", "level", "source", "timestamp"],
    }
    return {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]},
            "request_id": {**s, "description": "The request id."},
            "response_url": {**s, "description": "The response url."},
            "status_url": {**s, "description": "The status url."},
            "cancel_url": {**s, "description": "The cancel url."},
            "logs": {
                "type": "array",
                "nullable": True,
                "items": log_entry,
                "description": "The logs: every entry since the start with `?logs=1`, else null.",
            },
            "metrics": {"type": "object", "description": "The metrics.", "additionalProperties": True},
            "queue_position": {"type": "integer", "description": "The queue position."},
            "error": {**s, "description": "Why a COMPLETED request failed (absent when it succeeded)."},
            "error_type": {**s, "description": "The machine-readable kind of `error`."},
            "progress": {
                "type": "object",
                "x-kinema-extension": True,
                "description": "kinema extension: frames rendered so far while IN_PROGRESS.",
                "properties": {"step": {"type": "integer"}, "total": {"type": "integer"}},
            },
        },
        "required": ["status", "request_id"],
    }


def _error_schemas() -> dict[str, Any]:
    return {
        "ValidationError": {
            "type": "object",
            "properties": {
                "loc": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
                "msg": {"type": "string"},
                "type": {"type": "string"},
                "ctx": {"type": "object", "additionalProperties": True},
            },
            "required": ["loc", "msg", "type"],
        },
        "HTTPValidationError": {
            "type": "object",
            "properties": {"detail": {"type": "array", "items": {"$ref": _REF + "ValidationError"}}},
            "required": ["detail"],
        },
        "Error": {
            "type": "object",
            "properties": {"detail": {"type": "string"}, "error_type": {"type": "string"}},
            "required": ["detail"],
        },
        "CancelStatus": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND"]}
            },
            "required": ["status"],
        },
    }


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _REF + ref}}}}


_UNAUTHORIZED = _json("Error", "No valid API key (`Authorization: Key <key_id>:<key_secret>`).")
_NOT_FOUND = _json("Error", "No such request for this key (unknown, or past retention).")
_INVALID = _json("HTTPValidationError", "The input is invalid.")


def build_openapi(server_url: str | None = None) -> dict[str, Any]:
    schemas = {"QueueStatus": _queue_status_schema(), **_schemas(), **_error_schemas()}
    rid = {
        "name": "request_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "description": "Request ID"},
    }
    logs = {
        "name": "logs",
        "in": "query",
        "required": False,
        "schema": {"type": "number", "description": "Whether to include logs (`1`) in the response or not (`0`)."},
    }
    base = f"/{ENDPOINT_ID}"
    status = {
        "get": {
            "parameters": [rid, logs],
            "responses": {
                "200": _json("QueueStatus", "The request status."),
                "202": _json("QueueStatus", "The request status while IN_QUEUE or IN_PROGRESS."),
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
            },
        }
    }
    cancel = {
        "put": {
            "parameters": [rid],
            "responses": {
                "202": _json("CancelStatus", 'Cancellation requested: `{"status": "CANCELLATION_REQUESTED"}`.'),
                "400": _json("CancelStatus", 'The request already completed: `{"status": "ALREADY_COMPLETED"}`.'),
                "401": _UNAUTHORIZED,
                "404": _json("CancelStatus", 'No such request for this key: `{"status": "NOT_FOUND"}`.'),
            },
        }
    }
    result = {
        "get": {
            "parameters": [rid],
            "responses": {
                "200": _json(COMPONENT_NAMES["KlingOutput"], "Result of the request."),
                "400": _json("Error", "The request has not completed yet."),
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
                "422": _json(
                    "HTTPValidationError",
                    "The request completed with invalid input (found once its files were fetched).",
                ),
            },
        }
    }
    submit = {
        "post": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": _REF + COMPONENT_NAMES["KlingInput"]}}},
            },
            "responses": {
                "200": _json("QueueStatus", "The request status."),
                "401": _UNAUTHORIZED,
                "413": _json("Error", "The body is larger than the server's cap."),
                "422": _INVALID,
            },
        }
    }
    paths: dict[str, Any] = {
        f"{base}/requests/{{request_id}}/status": status,
        f"{base}/requests/{{request_id}}/cancel": cancel,
        base: submit,
        f"{base}/requests/{{request_id}}": result,
    }
    alias = "/" + "/".join(ENDPOINT_ID.split("/")[:2])  # the owner/alias form the clients use
    paths.update(
        {
            f"{alias}/requests/{{request_id}}/status": status,
            f"{alias}/requests/{{request_id}}/cancel": cancel,
            f"{alias}/requests/{{request_id}}": result,
        }
    )
    doc: dict[str, Any] = {
        "openapi": "3.0.4",
        "info": {
            "title": "Queue OpenAPI for " + ENDPOINT_ID,
            "version": "1.0.0",
            "description": "The OpenAPI schema for the " + ENDPOINT_ID + " queue, served by kinema " + __version__,
            "x-fal-metadata": {"endpointId": ENDPOINT_ID, "category": "image-to-video"},
        },
        "components": {
            "securitySchemes": {
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Fal Key"}
            },
            "schemas": schemas,
        },
        "paths": paths,
        "security": [{"apiKeyAuth": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
