"""A Lambda worker whose `time.time` and `time.monotonic` run faster (see `localcloud.awslambda.clock`),
then `worker.py`.

The clock is installed before the worker imports the handler, so a default argument such as
`clock=time.time` or `clock=time.monotonic` (a cache's TTL) binds the faster one too. `threading` and
`queue` are imported first: their timed waits keep the real clock. `LOCALCLOUD_CLOCK` is
"<real origin>:<rate>[:<skipped time file>]" (the file: `SkippedTime`'s, the seconds the clock skipped);
without it the worker runs on the real clock. Like `worker.py`, this file imports nothing from the
project.
"""

from __future__ import annotations

import mmap
import os
import queue  # noqa: F401  (imported before the clock: its timed waits keep the real monotonic)
import runpy
import struct
import threading  # noqa: F401  (likewise)
import time
from collections.abc import Callable
from pathlib import Path

CLOCK_VARIABLE = "LOCALCLOUD_CLOCK"
WORKER = Path(__file__).with_name("worker.py")


def install_clock(variable: str) -> None:
    origin_text, rate_text, *skipped_file = variable.split(":", 2)
    origin, rate = float(origin_text), float(rate_text)
    real_time, real_monotonic = time.time, time.monotonic
    monotonic_origin = real_monotonic()
    skipped = _mapped_seconds(skipped_file[0]) if skipped_file else lambda: 0.0

    def accelerated() -> float:
        return origin + (real_time() - origin) * rate + skipped()

    def accelerated_ns() -> int:
        return int(accelerated() * 1_000_000_000)

    def accelerated_monotonic() -> float:
        return monotonic_origin + (real_monotonic() - monotonic_origin) * rate + skipped()

    def accelerated_monotonic_ns() -> int:
        return int(accelerated_monotonic() * 1_000_000_000)

    time.time = accelerated
    time.time_ns = accelerated_ns
    time.monotonic = accelerated_monotonic
    time.monotonic_ns = accelerated_monotonic_ns


def _mapped_seconds(path: str) -> Callable[[], float]:
    """The seconds the clock has skipped, as the test process writes them to `path` (a double)."""
    with open(path, "rb") as file:
        mapped = mmap.mmap(file.fileno(), 8, access=mmap.ACCESS_READ)
    return lambda: float(struct.unpack_from("d", mapped)[0])


if __name__ == "__main__":
    # Out of the handler's environment: on AWS the function's variables are the template's.
    clock = os.environ.pop(CLOCK_VARIABLE, None)
    if clock:
        install_clock(clock)
    runpy.run_path(str(WORKER), run_name="__main__")
