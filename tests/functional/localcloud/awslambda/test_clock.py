"""The Lambda workers' accelerated clock: the handler's `time.time` runs faster, its code is unchanged."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from localcloud.awslambda.clock import CLOCK_VARIABLE, AcceleratedClock, SkippedTime, accelerated_workers
from localcloud.awslambda.runner import FunctionSpec, LambdaRunner

RATE = 600.0
# A handler reporting its clock three ways: called now, bound as a default argument at import (as the
# rollout services bind `clock=time.time`), and the environment it sees.
CLOCK_HANDLER = """
import os
import time


def bound(clock=time.time):
    return clock()


def elapsed(seconds, clock=time.monotonic):
    started = clock()
    time.sleep(seconds)
    return clock() - started


def handler(event, context):
    return {
        "now": time.time(),
        "bound": bound(),
        "ns": time.time_ns(),
        "variables": sorted(os.environ),
        "monotonic_elapsed": elapsed(0.05),
    }
"""


@pytest.fixture
def spec(tmp_path: Path) -> FunctionSpec:
    asset = tmp_path / "asset"
    asset.mkdir()
    (asset / "clocked.py").write_text(textwrap.dedent(CLOCK_HANDLER))
    return FunctionSpec(function_name="clocked", handler="clocked.handler", code_dir=asset)


def test_a_worker_on_the_clock_tells_the_accelerated_time_wherever_the_handler_reads_it(
    spec: FunctionSpec,
) -> None:
    clock = AcceleratedClock(rate=RATE, real_origin=time.time() - 10)
    with accelerated_workers(), LambdaRunner([clock.on(spec)]) as runner:
        before = clock.now()
        answer = runner.invoke("clocked", "{}").json()
        after = clock.now()
    assert before <= answer["now"] <= answer["bound"] <= after
    assert abs(answer["ns"] / 1e9 - answer["now"]) < RATE
    # 10 real seconds after the origin, the clock is 100 minutes past it.
    assert answer["now"] - clock.real_origin > 10 * RATE
    assert CLOCK_VARIABLE not in answer["variables"]


def test_a_cache_timed_on_the_monotonic_clock_expires_on_the_accelerated_one(spec: FunctionSpec) -> None:
    # The router caches the endpoint's weights for 30 s of `time.monotonic`: on the real clock a step's
    # new weights reached users 7.5 emulated minutes late at the demo's rate, two and a half bakes.
    clock = AcceleratedClock(rate=RATE)
    with accelerated_workers(), LambdaRunner([clock.on(spec)]) as runner:
        answer = runner.invoke("clocked", "{}").json()
    # 0.05 real seconds slept, measured as 30 s on the bound monotonic clock.
    assert answer["monotonic_elapsed"] >= 0.05 * RATE * 0.99


def test_a_worker_without_the_clock_tells_the_real_time(spec: FunctionSpec) -> None:
    with accelerated_workers(), LambdaRunner([spec]) as runner:
        before = time.time()
        answer = runner.invoke("clocked", "{}").json()
    assert before <= answer["now"] <= time.time()


def test_waits_are_whole_seconds_of_the_real_clock() -> None:
    clock = AcceleratedClock(rate=300.0)
    assert [clock.real_seconds(seconds) for seconds in (600, 60, 1, 601)] == [2, 1, 1, 3]
    with pytest.raises(ValueError, match="at least as fast"):
        AcceleratedClock(rate=0.5)


def test_a_skip_moves_a_warm_workers_clocks_at_once(spec: FunctionSpec, tmp_path: Path) -> None:
    skipped = SkippedTime(tmp_path / "skipped")
    clock = AcceleratedClock(rate=RATE, skipped=skipped)
    told: list[float] = []
    skipped.listeners.append(lambda: told.append(clock.now()))
    try:
        with accelerated_workers(), LambdaRunner([clock.on(spec)]) as runner:
            first = runner.invoke("clocked", "{}").json()
            skipped.skip(3600)
            second = runner.invoke("clocked", "{}").json()
        assert skipped.seconds() == 3600
    finally:
        skipped.close()
    # An hour on, in the same worker, with well under an hour of the accelerated clock between the calls.
    assert 3600 <= second["now"] - first["now"] < 3600 + 30 * RATE
    assert second["bound"] - first["bound"] >= 3600
    assert told and told[0] - first["now"] >= 3600
