"""Wait states that skip the clock ahead on moto's executor (`localcloud.stepfunctions.waits`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from localcloud.awslambda.clock import AcceleratedClock, SkippedTime
from localcloud.stepfunctions.waits import skipped_waits
from tests.functional.localcloud.stepfunctions.test_execution_events import ended, run

RATE = 300.0
# Two waits of 30 real seconds each: 5 hours of the clock.
WAITS = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Wait", "Seconds": 30, "Next": "Second"},
        "Second": {"Type": "Wait", "Seconds": 30, "End": True},
    },
}


@pytest.fixture
def clock(tmp_path: Path) -> Iterator[AcceleratedClock]:
    skipped = SkippedTime(tmp_path / "skipped")
    try:
        yield AcceleratedClock(rate=RATE, skipped=skipped)
    finally:
        skipped.close()


def test_each_wait_moves_the_clock_its_length_and_the_execution_goes_on_at_once(
    clock: AcceleratedClock,
) -> None:
    assert clock.skipped is not None
    seen: list[float] = []
    clock.skipped.listeners.append(lambda: seen.append(clock.now()))
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), skipped_waits(clock):
        before = clock.now()
        # Unskipped, the waits would outlast `ended`'s 30 s.
        assert ended(run(WAITS, "waits"))["status"] == "SUCCEEDED"
    assert clock.skipped.seconds() == 2 * 30 * RATE
    # Each listener call saw its wait's time already on the clock.
    assert len(seen) == 2 and seen[0] - before >= 30 * RATE and seen[1] - before >= 60 * RATE


def test_a_clock_without_skipped_time_is_refused() -> None:
    with pytest.raises(ValueError, match="no skipped time"), skipped_waits(AcceleratedClock(rate=RATE)):
        pass
