"""A faster clock for the Lambda workers: the minutes a workflow waits pass in seconds."""

from __future__ import annotations

import dataclasses
import json
import math
import mmap
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from localcloud.awslambda import runner
from localcloud.awslambda.runner import FunctionSpec

CLOCK_VARIABLE = "LOCALCLOUD_CLOCK"
CLOCK_WORKER_SCRIPT = Path(__file__).with_name("clock_worker.py")


SKIPPED_FORMAT = "d"


class SkippedTime:
    """The seconds a clock has skipped, in a file the workers map: when a workflow only waits, its clock
    jumps to the end of the wait, for every process at once.

    `skip` adds to the count, then calls each listener (in the skipping thread): what must be on the
    clock before anything runs at the new time, such as the metrics a test writes for each minute."""

    def __init__(self, path: Path) -> None:
        path.write_bytes(struct.pack(SKIPPED_FORMAT, 0.0))
        self.path = path
        self._file = path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), struct.calcsize(SKIPPED_FORMAT))
        self._lock = threading.Lock()
        self.listeners: list[Callable[[], None]] = []

    def seconds(self) -> float:
        return float(struct.unpack_from(SKIPPED_FORMAT, self._map)[0])

    def skip(self, seconds: float) -> None:
        with self._lock:
            self._map[:] = struct.pack(SKIPPED_FORMAT, self.seconds() + seconds)
        for listener in list(self.listeners):
            listener()

    def close(self) -> None:
        self._map.close()
        self._file.close()


@dataclass(frozen=True)
class AcceleratedClock:
    """`rate` seconds pass per real second, counted from `real_origin` (epoch seconds), plus the seconds
    `skipped` (when the clock skips waits)."""

    rate: float
    real_origin: float = field(default_factory=time.time)
    skipped: SkippedTime | None = None

    def __post_init__(self) -> None:
        if self.rate < 1:
            raise ValueError(f"an accelerated clock runs at least as fast as the real one, got {self.rate}")

    def now(self) -> float:
        skipped = self.skipped.seconds() if self.skipped is not None else 0.0
        return self.real_origin + (time.time() - self.real_origin) * self.rate + skipped

    def real_seconds(self, seconds: float) -> int:
        """A Wait state's whole seconds for `seconds` of this clock (at least 1, as ASL requires)."""
        return max(1, math.ceil(seconds / self.rate))

    def variable(self) -> str:
        """The value of `CLOCK_VARIABLE` that `clock_worker.py` reads."""
        skipped = f":{self.skipped.path}" if self.skipped is not None else ""
        return f"{self.real_origin!r}:{self.rate!r}{skipped}"

    def on(self, spec: FunctionSpec) -> FunctionSpec:
        """The function with this clock in its environment (create the function from this spec)."""
        environment = {**spec.environment, CLOCK_VARIABLE: self.variable()}
        return dataclasses.replace(spec, environment=environment)


@contextmanager
def accelerated_workers() -> Iterator[None]:
    """While open, the runner starts new workers through the clock worker (warm ones are kept)."""
    with mock.patch.object(runner, "WORKER_SCRIPT", CLOCK_WORKER_SCRIPT):
        yield


def shortened_waits(definition: str, clock: AcceleratedClock, path_seconds: dict[str, float]) -> str:
    """A state machine definition whose Wait states last what they last on the accelerated clock.

    moto's executor waits on the real clock. A Wait of N seconds becomes `clock.real_seconds(N)`; a Wait
    that reads its seconds from the state (`SecondsPath`) cannot divide it in ASL, so it becomes the
    real seconds of the value `path_seconds` gives for that path (e.g. the configured bake).
    """
    document = json.loads(definition)
    for name, state in document["States"].items():
        if state["Type"] != "Wait":
            continue
        if "SecondsPath" in state:
            path = state.pop("SecondsPath")
            if path not in path_seconds:
                raise ValueError(f"Wait state {name!r} reads {path}: give its seconds in path_seconds")
            state["Seconds"] = clock.real_seconds(path_seconds[path])
        elif "Seconds" in state:
            state["Seconds"] = clock.real_seconds(state["Seconds"])
        else:
            raise ValueError(f"Wait state {name!r} waits for a timestamp, which is not shortened")
    return json.dumps(document)
