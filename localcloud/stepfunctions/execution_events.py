"""Step Functions' "Execution Status Change" events on moto, which runs executions but emits no event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from unittest import mock

from moto.events.models import events_backends
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

DETAIL_TYPE = "Step Functions Execution Status Change"
SOURCE = "aws.states"


@contextmanager
def emit_execution_events() -> Iterator[list[dict[str, Any]]]:
    """While open, executions put their status changes on the default bus; the details put are yielded."""
    emitted: list[dict[str, Any]] = []
    original_start = Execution.start
    original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status

    def start(execution: Execution) -> None:
        original_start(execution)
        # The start's event says RUNNING even when a short execution has already ended in its thread.
        _emit(execution, emitted, running=True)

    def reflect(communication: BaseExecutionWorkerCommunication) -> None:
        original_reflect(communication)  # type: ignore[no-untyped-call]  # moto: untyped
        _emit(communication.execution, emitted)

    with (
        mock.patch.object(Execution, "start", start),
        mock.patch.object(BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect),
    ):
        yield emitted


def status_change_detail(execution: Execution, *, running: bool = False) -> dict[str, Any]:
    status = "RUNNING" if running or execution.exec_status is None else execution.exec_status.value
    output = execution.output if status == "SUCCEEDED" else None
    ended = status != "RUNNING"
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name or execution.exec_arn.rsplit(":", 1)[1],
        "status": status,
        "startDate": _epoch_millis(execution.start_date),
        "stopDate": _epoch_millis(execution.stop_date) if ended else None,
        "input": json.dumps(execution.input_data),
        "output": None if output is None else json.dumps(output),
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if output is not None else None,
        "error": execution.error if ended else None,
        "cause": execution.cause if ended else None,
    }


def _emit(execution: Execution, emitted: list[dict[str, Any]], *, running: bool = False) -> None:
    detail = status_change_detail(execution, running=running)
    entry = {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail, default=str),
        "Resources": [execution.exec_arn],
    }
    events_backends[execution.account_id][execution.region_name].put_events([entry])
    # Listed once put: whoever sees it listed finds the rules' targets already delivered to.
    emitted.append(detail)


def _epoch_millis(moment: Any) -> int | None:
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return int(moment.timestamp() * 1000)
    return int(float(moment) * 1000)
