"""The request pipeline: parse → fetch → decode → engine frames → output contract → encode → store.

One pipeline serves the worker processes and ``kinema generate`` / ``kinema batch`` in-process.
"""

from __future__ import annotations

from kinema.pipeline.contract import conform
from kinema.pipeline.request import Clip, Pipeline

__all__ = ["Clip", "Pipeline", "conform"]
