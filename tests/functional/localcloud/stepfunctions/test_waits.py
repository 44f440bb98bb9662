"""Wait states that skip the clock ahead on moto's executor (`localcloud.stepfunctions.waits`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from localcloud.awslambda.clock import AcceleratedClock, SkippedTime
from localcloud.stepfunctions.waits import skipped_waits

ROLE = "arn:aws:iam::123456789012:role/states"
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


def ended(execution: str) -> dict[str, object]:
    states = boto3.client("stepfunctions")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        described = states.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.02)
    raise AssertionError(f"{execution} still waits: the waits were not skipped")


def test_each_wait_moves_the_clock_its_length_and_the_execution_goes_on_at_once(
    clock: AcceleratedClock,
) -> None:
    assert clock.skipped is not None
    seen: list[float] = []
    clock.skipped.listeners.append(lambda: seen.append(clock.now()))
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), skipped_waits(clock):
        states = boto3.client("stepfunctions")
        machine = states.create_state_machine(name="waits", definition=json.dumps(WAITS), roleArn=ROLE)
        before = clock.now()
        execution = states.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
        assert ended(execution)["status"] == "SUCCEEDED"
    assert clock.skipped.seconds() == 2 * 30 * RATE
    # Each listener call saw its wait's time already on the clock.
    assert len(seen) == 2 and seen[0] - before >= 30 * RATE and seen[1] - before >= 60 * RATE


def test_a_clock_without_skipped_time_is_refused() -> None:
    with pytest.raises(ValueError, match="no skipped time"), skipped_waits(AcceleratedClock(rate=RATE)):
        pass
