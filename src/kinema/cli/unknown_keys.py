"""Keys of a request that the API does not know, with the known key they were probably meant to be.

The server ignores unknown fields, as fal does, so ``"durration": "10"`` silently gives a 5 s clip. The
CLI warns instead: ``dynamic_masks[0].trajectory: unknown key, ignored (did you mean "trajectories"?)``.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kinema.schema import KlingInput

__all__ = ["UnknownKey", "find_unknown_keys"]


@dataclass(frozen=True)
class UnknownKey:
    path: str  # where it is, e.g. "durration" or "dynamic_masks[0].trajectory"
    key: str
    suggestion: str | None  # the closest known key at that place, if one is close

    def __str__(self) -> str:
        hint = f' (did you mean "{self.suggestion}"?)' if self.suggestion else ""
        return f"{self.path}: unknown key, ignored{hint}"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``list[DynamicMask] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model = _model_in(arg)
            if model is not None:
                return model
    return None


def _walk(value: Any, model: type[BaseModel], path: str, found: list[UnknownKey]) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, model, f"{path}[{i}]", found)
        return
    if not isinstance(value, dict):
        return
    fields = model.model_fields
    for key, item in value.items():
        where = f"{path}.{key}" if path else str(key)
        field = fields.get(key)
        if field is None:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            found.append(UnknownKey(where, str(key), close[0] if close else None))
            continue
        nested = _model_in(field.annotation)
        if nested is not None:
            _walk(item, nested, where, found)


def find_unknown_keys(payload: Any) -> list[UnknownKey]:
    """Every key of ``payload`` (a request dict, nested masks and points included) outside the input schema."""
    found: list[UnknownKey] = []
    _walk(payload, KlingInput, "", found)
    return found
