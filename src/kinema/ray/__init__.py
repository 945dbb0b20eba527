"""Engines as Ray actors (issue 10): ``kinema ray`` and ``kinema serve --executor ray``.

:mod:`kinema.ray.actor` is one actor's body (a warm engine claiming from the job store through the
core's pipeline); :mod:`kinema.ray.executor` places and supervises the actors. Ray is the optional
extra ``ray`` (``pip install 'kinema[ray]'``); nothing else in kinema imports this package.
"""

from __future__ import annotations

__all__: list[str] = []
