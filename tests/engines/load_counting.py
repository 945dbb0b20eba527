"""Counts its loads: each load appends a line to ``$KINEMA_TEST_LOADS`` (worker reuse tests).

``KINEMA_TEST_LOAD_FAIL`` set: the load raises with that text (DEFUNCT tests);
``KINEMA_TEST_LOAD_S``: seconds the load takes.
"""

import os
import time

from _frames import FixtureEngine


def load(settings: object, device: str) -> FixtureEngine:
    fail = os.environ.get("KINEMA_TEST_LOAD_FAIL")
    if fail:
        raise RuntimeError(fail)
    time.sleep(float(os.environ.get("KINEMA_TEST_LOAD_S", "0")))
    path = os.environ.get("KINEMA_TEST_LOADS")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{os.getpid()} {device}\n")
    return FixtureEngine()
