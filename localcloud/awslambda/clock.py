"""A faster clock for the Lambda workers: the minutes a workflow waits pass in seconds."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from localcloud.awslambda import runner
from localcloud.awslambda.runner import FunctionSpec

CLOCK_VARIABLE = "LOCALCLOUD_CLOCK"
CLOCK_WORKER_SCRIPT = Path(__file__).with_name("clock_worker.py")


@dataclass(frozen=True)
class AcceleratedClock:
    """`rate` seconds pass per real second, counted from `real_origin` (epoch seconds)."""

    rate: float
    real_origin: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.rate < 1:
            raise ValueError(f"an accelerated clock runs at least as fast as the real one, got {self.rate}")

    def now(self) -> float:
        return self.real_origin + (time.time() - self.real_origin) * self.rate

    def real_seconds(self, seconds: float) -> int:
        """A Wait state's whole seconds for `seconds` of this clock (at least 1, as ASL requires)."""
        return max(1, math.ceil(seconds / self.rate))

    def variable(self) -> str:
        """The value of `CLOCK_VARIABLE` that `clock_worker.py` reads."""
        return f"{self.real_origin!r}:{self.rate!r}"

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
