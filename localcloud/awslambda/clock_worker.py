"""A Lambda worker whose `time.time` runs faster (see `localcloud.awslambda.clock`), then `worker.py`.

The clock is installed before the worker imports the handler, so a default argument such as
`clock=time.time` binds the faster one too. `LOCALCLOUD_CLOCK` is "<real origin>:<rate>"; without it
the worker runs on the real clock. Like `worker.py`, this file imports nothing from the project.
"""

from __future__ import annotations

import os
import runpy
import time
from pathlib import Path

CLOCK_VARIABLE = "LOCALCLOUD_CLOCK"
WORKER = Path(__file__).with_name("worker.py")


def install_clock(variable: str) -> None:
    origin_text, rate_text = variable.split(":")
    origin, rate = float(origin_text), float(rate_text)
    real_time = time.time

    def accelerated() -> float:
        return origin + (real_time() - origin) * rate

    def accelerated_ns() -> int:
        return int(accelerated() * 1_000_000_000)

    time.time = accelerated
    time.time_ns = accelerated_ns


if __name__ == "__main__":
    # Out of the handler's environment: on AWS the function's variables are the template's.
    clock = os.environ.pop(CLOCK_VARIABLE, None)
    if clock:
        install_clock(clock)
    runpy.run_path(str(WORKER), run_name="__main__")
