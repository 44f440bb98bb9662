"""Wait states that skip the clock ahead instead of waiting, on moto's executor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment

from localcloud.awslambda.clock import AcceleratedClock


@contextmanager
def skipped_waits(clock: AcceleratedClock) -> Iterator[None]:
    """While open, a Wait state of N (real) seconds moves `clock` N * rate seconds ahead and goes on at
    once: what it waited for is on the clock before its next state starts (`SkippedTime` listeners), and
    the minutes it would have slept are not spent. Everything else on the clock sees the jump too."""
    skipped = clock.skipped
    if skipped is None:
        raise ValueError("the clock has no skipped time to move: make it with skipped=SkippedTime(...)")

    def skip(_wait: WaitFunction, env: Environment, wait_seconds: int) -> None:
        if wait_seconds > 0 and env.is_running():
            skipped.skip(wait_seconds * clock.rate)

    with mock.patch.object(WaitFunction, "_wait_interval", skip):
        yield
