"""The fault-injection matrix's machinery: the synthesized rollout state machine run in-process over the
real handlers, moto for every AWS call, one fault injected at one task state, the invariants checked.

Why in-process and not on moto's executor (`tests/functional/rollout_cloud.py`): a fault has to land at
one exact point of one execution (a task that raised, timed out after its side effects, or finished after
its execution was stopped) and the matrix runs a hundred rollouts. Here:

* `Interpreter` runs the Amazon States Language of the synthesized definition: Choice, Pass, Wait, Task
  (Retry with the definition's intervals, at their upper bound: full jitter never waits longer), Catch,
  Fail and Succeed. A task calls the real handler of the function its Resource names. Several executions
  run side by side (an abort starts one while the rollout's own is stopped); the clock is emulated and
  jumps to the next execution that is ready, so a 20-minute endpoint update costs nothing.
* `SlowEndpoint` is SageMaker's control plane on moto with updates that take time: an UpdateEndpoint
  leaves the endpoint `Updating` for `UPDATE_SECONDS` (a blue/green guardrail deployment lasts about as
  long), refuses every other update meanwhile as SageMaker does, and then lands, fails (the endpoint back
  in service on its old config, with a failure reason) or is silently rolled back by SageMaker.
* The abort function is the real handler too; its Step Functions calls go to the interpreter.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from lambdas.rollout.aws.endpoint_ops import SageMakerControl, model_name_for
from lambdas.rollout.aws.ledger_table import DynamoDBLedgerStore
from lambdas.rollout.aws.wiring import build_services, use
from lambdas.rollout.ledger import EntryKind, Ledger, LedgerEntry
from lambdas.rollout.settings import RolloutSettings, load_abort_settings
from lambdas.rollout.tasks.rollback import MAX_RESTORES
from lambdas.shared.aws_clients import PublishesNotifications, ReadsObjects
from localcloud.moto_costs import moto_costs_kept
from localcloud.sagemaker.control import switch_config
from localcloud.sagemaker.runtime import serve_endpoints
from tests.functional.rollout_cloud import (
    RolloutTemplate,
    create_endpoint_and_registry,
    create_parameters,
    create_tables,
    subscribe_to_topic,
    write_gate_files,
)
from tests.functional.rollout_support import (
    BOOTSTRAP_MODEL,
    BUCKET,
    ENDPOINT_NAME,
    FAILING,
    HEALTHY,
    IMAGE,
    REGION,
    Clock,
    LambdaContextStub,
    Minute,
)
from tests.functional.serving_support import FakeAppConfigData, flag_values

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A blue/green guardrail deployment: 600 s canary wait + 300 s termination wait + provisioning.
UPDATE_SECONDS = 20 * 60
TASK_SECONDS = 1
# An execution that has not ended after this many states is stuck in a loop.
MAX_STATES = 2_000
# 5 challenger requests a minute (the champion serves 95 beside them at 5 %): dev's first step cannot
# serve its minimum samples in time.
TRICKLE = Minute(requests=5, latency_us=20_000, trials=5, successes=1)
ABORT_REASON = "the fault matrix aborts"
ROLLBACK_STATE = "Roll back to the champion"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
SET_WEIGHTS = "arn:aws:states:::aws-sdk:sagemaker:updateEndpointWeightsAndCapacities"
# Step Functions' own service calls: they run no function of the stack.
INTEGRATIONS = (SNS_PUBLISH, SET_WEIGHTS)


class Fault(StrEnum):
    RAISES = "task raises"
    THROTTLED = "throttled past its retries"
    TIMEOUT = "Lambda timeout"
    ABORT = "abort while the state runs"
    UPDATE_FAILS = "endpoint update fails"
    SILENT_ROLLBACK = "endpoint update silently rolled back"
    LATE_MID = "stopped execution's task lands mid-rollback"
    LATE_AFTER = "stopped execution's task lands after the rollback"


class InjectedFault(Exception):
    """What a task raises when the matrix makes it fail."""


class ThrottlingException(Exception):
    """Throttling, by the name the state machine retries (the handlers raise it after botocore's retries)."""


@dataclass
class TaskFailure(Exception):
    error: str
    cause: str


# --- SageMaker with updates that take time -----------------------------------------------------------


@dataclass
class _Pending:
    config: str
    lands_at: float
    ending: str  # "lands", "fails", "silent"


class SlowEndpoint:
    """moto's SageMaker client; UpdateEndpoint takes `UPDATE_SECONDS` on the clock and may fail."""

    def __init__(self, client: Any, clock: Clock, stall: Callable[[], None]) -> None:
        self._client = client
        self._clock = clock
        self._stall = stall
        self.pending: _Pending | None = None
        self.next_ending = "lands"
        self.updates: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith(("create_", "update_", "delete_")):
            self._stall()
        return attribute

    def _endpoint(self) -> Any:
        return sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].endpoints[ENDPOINT_NAME]

    def settle(self) -> None:
        pending = self.pending
        if pending is None or self._clock.now < pending.lands_at:
            return
        endpoint = self._endpoint()
        if pending.ending == "lands":
            config = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].endpoint_configs[pending.config]
            switch_config(endpoint, config)
        endpoint.endpoint_status = "InService"
        self.failure_reason = (
            "ResourceLimitExceeded: not enough ml.m5.large capacity" if pending.ending == "fails" else ""
        )
        self.pending = None

    failure_reason = ""

    def describe_endpoint(self, *, EndpointName: str) -> dict[str, Any]:
        self.settle()
        described = dict(self._client.describe_endpoint(EndpointName=EndpointName))
        if self.pending is not None:
            described["EndpointStatus"] = "Updating"
            described["PendingDeploymentSummary"] = {"EndpointConfigName": self.pending.config}
        elif self.failure_reason:
            described["FailureReason"] = self.failure_reason
        return described

    def _refuse_while_updating(self, operation: str) -> None:
        self.settle()
        if self.pending is not None:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationException",
                        "Message": f"Cannot update in-progress endpoint {ENDPOINT_NAME}.",
                    }
                },
                operation,
            )

    def update_endpoint(self, **request: Any) -> dict[str, Any]:
        self._stall()
        self._refuse_while_updating("UpdateEndpoint")
        config = str(request["EndpointConfigName"])
        self._client.describe_endpoint_config(EndpointConfigName=config)  # unknown: ValidationException
        self.updates.append(config)
        self.pending = _Pending(config, self._clock.now + UPDATE_SECONDS, self.next_ending)
        self.next_ending = "lands"
        self.failure_reason = ""
        self._endpoint().endpoint_status = "Updating"
        return {"EndpointArn": self._endpoint().arn}

    def update_endpoint_weights_and_capacities(self, **request: Any) -> Any:
        self._stall()
        self._refuse_while_updating("UpdateEndpointWeightsAndCapacities")
        return self._client.update_endpoint_weights_and_capacities(**request)

    def finish_updates(self) -> None:
        if self.pending is not None:
            self._clock.now = max(self._clock.now, self.pending.lands_at)
            self.settle()


# --- the state machine, interpreted ------------------------------------------------------------------


@dataclass
class Execution:
    arn: str
    name: str
    input: dict[str, Any]
    state: str
    data: Any
    ready_at: float
    status: str = "RUNNING"
    error: str | None = None
    cause: str | None = None
    entered: list[str] = field(default_factory=list)
    stop_requested: bool = False


def _path(data: Any, path: str) -> tuple[bool, Any]:
    if path == "$":
        return True, data
    node = data
    for key in path.removeprefix("$.").split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _matches(rule: Mapping[str, Any], data: Any) -> bool:
    if "And" in rule:
        return all(_matches(r, data) for r in rule["And"])
    if "Or" in rule:
        return any(_matches(r, data) for r in rule["Or"])
    if "Not" in rule:
        return not _matches(rule["Not"], data)
    present, value = _path(data, rule["Variable"])
    if "IsPresent" in rule:
        return present is bool(rule["IsPresent"])
    if "IsNull" in rule:
        return (present and value is None) is bool(rule["IsNull"])
    if "StringEquals" in rule:
        return present and value == rule["StringEquals"]
    if "BooleanEquals" in rule:
        return present and value is rule["BooleanEquals"]
    raise NotImplementedError(f"choice rule {sorted(rule)} is not interpreted here")


TaskCall = Callable[[Any], Any]
# (interpreter, execution, state name, attempt, the call of the real handler) -> the task's output
Injector = Callable[["Interpreter", Execution, str, int, Callable[[], Any]], Any]


class Interpreter:
    """The rollout state machine's executions, run one state at a time on the emulated clock."""

    def __init__(
        self,
        definition: Mapping[str, Any],
        machine_arn: str,
        tasks: Mapping[str, TaskCall],
        clock: Clock,
    ) -> None:
        self.definition = definition
        self.machine_arn = machine_arn
        self._tasks = tasks
        self.clock = clock
        self.executions: dict[str, Execution] = {}
        self.integrations: dict[str, TaskCall] = {}
        """Step Functions' own service integrations (Resource -> the call with the resolved Parameters)."""
        self.injector: Injector | None = None
        self.on_ended: Callable[[Execution], None] | None = None
        self.between: Callable[[], None] | None = None
        """Called before each state: events the world delivers meanwhile (EventBridge is asynchronous)."""

    # boto3's stepfunctions calls the abort makes --------------------------------------------------

    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        assert stateMachineArn == self.machine_arn, stateMachineArn
        arn = self.machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        if arn in self.executions:
            raise ClientError(
                {"Error": {"Code": "ExecutionAlreadyExists", "Message": f"Execution {arn} exists"}},
                "StartExecution",
            )
        document = json.loads(input)
        self.executions[arn] = Execution(
            arn, name, document, self.definition["StartAt"], document, ready_at=self.clock.now
        )
        return {"executionArn": arn}

    def describe_execution(self, *, executionArn: str) -> dict[str, Any]:
        execution = self.executions.get(executionArn)
        if execution is None:
            raise ClientError(
                {"Error": {"Code": "ExecutionDoesNotExist", "Message": executionArn}}, "DescribeExecution"
            )
        return {"executionArn": executionArn, "status": execution.status}

    def list_executions(self, *, stateMachineArn: str, statusFilter: str) -> dict[str, Any]:
        assert stateMachineArn == self.machine_arn, stateMachineArn
        listed = [e for e in self.executions.values() if e.status == statusFilter]
        return {"executions": [{"executionArn": e.arn, "name": e.name, "status": e.status} for e in listed]}

    def stop_execution(self, *, executionArn: str, error: str, cause: str) -> dict[str, Any]:
        execution = self.executions[executionArn]
        if execution.status == "RUNNING":
            execution.stop_requested = True
            self._end(execution, "ABORTED", error, cause)
        return {}

    # running ------------------------------------------------------------------------------------------

    def running(self) -> list[Execution]:
        return [e for e in self.executions.values() if e.status == "RUNNING"]

    def run_all(self, until: Callable[[], bool] | None = None) -> None:
        """Run every execution to its end (or until `until()` holds after a state)."""
        steps = 0
        while True:
            if self.between is not None:
                self.between()
            if not self.running():
                return
            execution = min(self.running(), key=lambda e: e.ready_at)
            self.clock.now = max(self.clock.now, execution.ready_at)
            self.step(execution)
            steps += 1
            if steps > MAX_STATES * 4:
                raise AssertionError(f"executions still running after {steps} states: {self.running()}")
            if until is not None and until():
                return

    def step(self, execution: Execution) -> None:
        name = execution.state
        spec = self.definition["States"][name]
        execution.entered.append(name)
        if len(execution.entered) > MAX_STATES:
            raise AssertionError(f"{execution.name} loops: {execution.entered[-12:]}")
        kind = spec["Type"]
        if kind == "Choice":
            target = next((c["Next"] for c in spec["Choices"] if _matches(c, execution.data)), None)
            self._go(execution, target or spec["Default"])
        elif kind == "Pass":
            if "Parameters" in spec:
                execution.data = self._parameters(spec["Parameters"], execution)
            self._go(execution, spec["Next"])
        elif kind == "Wait":
            seconds = spec["Seconds"] if "Seconds" in spec else _path(execution.data, spec["SecondsPath"])[1]
            execution.ready_at = self.clock.now + float(seconds)
            execution.state = spec["Next"]
        elif kind == "Succeed":
            self._end(execution, "SUCCEEDED", None, None)
        elif kind == "Fail":
            cause = spec.get("Cause")
            if "CausePath" in spec:
                cause = _path(execution.data, spec["CausePath"])[1]
            self._end(execution, "FAILED", spec.get("Error"), cause)
        elif kind == "Task":
            self._task(execution, name, spec)
        else:
            raise NotImplementedError(f"state type {kind}")

    def _go(self, execution: Execution, target: str) -> None:
        execution.state = target

    def _end(self, execution: Execution, status: str, error: str | None, cause: str | None) -> None:
        execution.status, execution.error, execution.cause = status, error, cause
        if self.on_ended is not None:
            self.on_ended(execution)

    def _parameters(self, parameters: Mapping[str, Any], execution: Execution) -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        for key, value in parameters.items():
            if isinstance(value, Mapping):
                resolved[key] = self._parameters(value, execution)
            elif isinstance(value, list):
                resolved[key] = [
                    self._parameters(item, execution) if isinstance(item, Mapping) else item for item in value
                ]
            elif key.endswith(".$"):
                resolved[key[:-2]] = self._value(str(value), execution)
            else:
                resolved[key] = value
        return resolved

    def _value(self, expression: str, execution: Execution) -> Any:
        if expression == "$$.Execution.Id":
            return execution.arn
        if expression == "$$.Execution.Input":
            return execution.input
        if expression.startswith("States.JsonMerge("):
            left, right, _deep = (part.strip() for part in expression[17:-1].split(","))
            return {**_path(execution.data, left)[1], **_path(execution.data, right)[1]}
        return _path(execution.data, expression)[1]

    def _task(self, execution: Execution, name: str, spec: Mapping[str, Any]) -> None:
        if spec["Resource"] == "arn:aws:states:::lambda:invoke":
            function = spec["Parameters"]["FunctionName"]
            payload = self._parameters(spec["Parameters"], execution)["Payload"]
        elif spec["Resource"] in self.integrations:
            function, payload = spec["Resource"], self._parameters(spec["Parameters"], execution)
        else:
            function, payload = spec["Resource"], execution.data
        handler = self._tasks.get(function) or self.integrations[function]
        attempts: dict[int, int] = {}
        attempt = 0
        while True:
            self.clock.now += TASK_SECONDS
            try:
                output = self._invoke(execution, name, attempt, _calling(handler), payload)
            except TaskFailure as failure:
                if execution.status != "RUNNING":
                    return  # stopped while its task ran: whatever the task did, the execution has ended
                retry = _retrier(spec, failure.error)
                if retry is not None:
                    index, rule = retry
                    done = attempts.get(index, 0)
                    if done < int(rule.get("MaxAttempts", 3)):
                        attempts[index] = done + 1
                        delay = (
                            float(rule.get("IntervalSeconds", 1)) * float(rule.get("BackoffRate", 2)) ** done
                        )
                        if "MaxDelaySeconds" in rule:
                            delay = min(delay, float(rule["MaxDelaySeconds"]))
                        if rule.get("JitterStrategy") == "FULL":
                            delay /= 2  # full jitter waits between 0 and the delay: on average half
                        self.clock.now += delay
                        attempt += 1
                        continue
                caught = _catcher(spec, failure.error)
                if caught is None:
                    self._end(execution, "FAILED", failure.error, failure.cause)
                    return
                catcher, result_path = caught
                execution.data = _placed(
                    execution.data, result_path, {"Error": failure.error, "Cause": failure.cause}
                )
                execution.state = catcher
                execution.ready_at = self.clock.now
                return
            if execution.status != "RUNNING":
                return
            execution.data = _placed(execution.data, spec.get("ResultPath", "$"), output)
            execution.state = spec["Next"]
            execution.ready_at = self.clock.now
            return

    def _invoke(self, execution: Execution, name: str, attempt: int, call: TaskCall, payload: Any) -> Any:
        if self.injector is None:
            return call(payload)
        return self.injector(self, execution, name, attempt, lambda: call(payload))


def _calling(handler: TaskCall) -> TaskCall:
    def call(payload: Any) -> Any:
        try:
            return handler(json.loads(json.dumps(payload)))
        except TaskFailure:
            raise
        except Exception as error:
            name = type(error).__name__
            raise TaskFailure(name, json.dumps({"errorType": name, "errorMessage": str(error)})) from error

    return call


def _retrier(spec: Mapping[str, Any], error: str) -> tuple[int, Mapping[str, Any]] | None:
    for index, rule in enumerate(spec.get("Retry", [])):
        if error in rule["ErrorEquals"] or ("States.ALL" in rule["ErrorEquals"]):
            return index, rule
    return None


def _catcher(spec: Mapping[str, Any], error: str) -> tuple[str, str | None] | None:
    """The state a Catch goes to, and its ResultPath (None: the input as it was)."""
    for rule in spec.get("Catch", []):
        if error in rule["ErrorEquals"] or "States.ALL" in rule["ErrorEquals"]:
            return str(rule["Next"]), rule.get("ResultPath", "$")
    return None


def _placed(data: Any, result_path: str | None, result: Any) -> Any:
    """The state after a result is placed at `result_path` ("$": it replaces the state; None: dropped)."""
    if result_path is None:
        return data
    if result_path == "$":
        return result
    placed = dict(data) if isinstance(data, Mapping) else {}
    keys = result_path.removeprefix("$.").split(".")
    node = placed
    for key in keys[:-1]:
        node[key] = dict(node.get(key) or {})
        node = node[key]
    node[keys[-1]] = result
    return placed


# --- one rollout on a fresh moto, with one fault ------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """The rollout a cell starts from: which candidate, and whether a person aborts it on the way."""

    name: str
    challenger: Minute = HEALTHY
    champion: Minute = HEALTHY
    abort_at: str | None = None
    """A person aborts when the rollout's execution first enters this state (before its task runs)."""
    failing_update_at: str | None = None
    """The first endpoint update sent from this state on fails."""
    failing_updates: int = 1
    """How many times the state's update fails (each time the state is entered)."""
    held_by_another: bool = False
    """Another rollout, running outside this run, holds the endpoint's lock when this one starts."""
    unknown_group: bool = False
    """The approval names a package group no endpoint here serves: the start refuses it."""

    broken_function: tuple[str, ...] = ()
    """The states whose function fails on every try, every time (not only past its retries once)."""

    @property
    def restore_impossible(self) -> bool:
        """SageMaker fails every restoring update the rollback may send: no workflow can remove the
        candidate's variant from the endpoint."""
        return (
            self.failing_update_at == ROLLBACK_STATE and self.failing_updates > MAX_RESTORES
        ) or self.rollback_function_broken

    @property
    def rollback_function_broken(self) -> bool:
        """The rollback function fails whenever it runs: nothing can restore the endpoint or record."""
        return ROLLBACK_STATE in self.broken_function


PROMOTED = Scenario("promoted")
ROLLED_BACK = Scenario("judged bad", challenger=FAILING)
TOO_LITTLE_DATA = Scenario("too little traffic", challenger=TRICKLE, champion=TRICKLE)
ABORTED = Scenario("aborted by a person", abort_at="Ask the judge")
RESTORE_FAILS = Scenario(
    "rollback's restoring update fails once",
    challenger=FAILING,
    failing_update_at=ROLLBACK_STATE,
)
LOCKED = Scenario("another rollout holds the endpoint", held_by_another=True)
REFUSED = Scenario("the approval is refused", unknown_group=True)
OTHER_ROLLOUT = "arn:aws:states:us-east-1:123456789012:execution:mlrollout-dev-rollout:another"
ROLLBACK_FUNCTION_BROKEN = Scenario(
    "the rollback function fails on every try",
    challenger=FAILING,
    broken_function=(ROLLBACK_STATE, f"{ROLLBACK_STATE} again"),
)
RESTORE_IMPOSSIBLE = Scenario(
    "every restoring update fails",
    challenger=FAILING,
    failing_update_at=ROLLBACK_STATE,
    failing_updates=1_000,
)


@dataclass
class Observed:
    """What a run leaves behind, for the invariants."""

    rollout_id: str
    candidate_model: str
    executions: list[Execution]
    ledger: list[LedgerEntry]
    package: dict[str, Any]
    running: list[tuple[str, str, float]]
    """(variant, model, weight) of what the endpoint serves."""
    running_config: str
    lock_holder: str | None
    notifications: list[dict[str, Any]]
    abort_accepted_before_promotion: bool
    abort_errors: list[str]
    live_holders: frozenset[str] = frozenset()
    """Rollouts outside the run that hold the lock while they run."""
    restore_impossible: bool = False
    """SageMaker failed every restoring update, or the rollback function every try
    (`Scenario.restore_impossible`)."""
    rollback_function_broken: bool = False
    """The rollback function failed every try: the outcome cannot be recorded by anyone."""


def broken_invariants(seen: Observed) -> list[str]:
    """Each invariant the run broke, named; empty when the run ended well."""
    broken: list[str] = []
    running = [e.status for e in seen.executions if e.status == "RUNNING"]
    if running:
        broken.append(f"executions still running: {running}")
    outcomes = [e for e in seen.ledger if e.kind is EntryKind.OUTCOME]
    status = str(outcomes[0].payload.get("status")) if len(outcomes) == 1 else None
    broken += _broken_outcome(seen, outcomes)
    promoted = status == "promoted" and not seen.abort_accepted_before_promotion
    if status == "promoted" and seen.abort_accepted_before_promotion:
        broken.append("promoted although an abort was accepted before the promotion was recorded")
    broken += _broken_endpoint(seen, status, promoted, gave_up=status == "failed" or not outcomes)
    approval = seen.package.get("ModelApprovalStatus")
    recorded = (seen.package.get("CustomerMetadataProperties") or {}).get("rollout.outcome")
    want = {
        "promoted": ("Approved", "promoted"),
        "rolled_back": ("Rejected", "rolled_back"),
        "failed": ("Rejected", "failed"),
        "inconclusive": ("PendingManualApproval", "inconclusive"),
    }.get(status or "", ("Approved", None))
    if (approval, recorded) != want:
        broken.append(f"package {approval} (recorded {recorded}) for outcome {status}")
    if seen.lock_holder is not None and seen.lock_holder not in seen.live_holders:
        broken.append(f"the lock is still held by {seen.lock_holder.rsplit(':', 1)[-1]}")
    if not promoted:
        said = [n for n in seen.notifications if n.get("rollout_id") == seen.rollout_id and n.get("reason")]
        if not said:
            broken.append("ended without a notification giving the reason")
    if seen.abort_errors:
        broken.append(f"the abort failed: {seen.abort_errors[0]}")
    return broken


def _broken_outcome(seen: Observed, outcomes: list[LedgerEntry]) -> list[str]:
    """Exactly one outcome in the ledger of a rollout that started. Only the rollback function records a
    rollback's outcome: when it fails on every try the ledger can hold none, and then the end must be told
    (see `broken_invariants`) and show as failed, for the alarms and the console."""
    broken = []
    if seen.ledger and len(outcomes) != 1 and not (seen.rollback_function_broken and not outcomes):
        broken.append(f"the ledger holds {len(outcomes)} outcomes, not one")
    if seen.rollback_function_broken and not any(
        e.arn == seen.rollout_id and e.error == "RollbackFailed" for e in seen.executions
    ):
        broken.append("the rollback function failed on every try, yet the rollout did not end RollbackFailed")
    return broken


def _broken_endpoint(seen: Observed, status: str | None, promoted: bool, *, gave_up: bool) -> list[str]:
    """The endpoint serves the expected model alone; no candidate variant is left. Where no workflow can
    remove it (SageMaker fails every restoring update, or the rollback function every try), the
    candidate's variant may stay at 0 % once the rollout gave up; anywhere else giving up is broken."""
    broken = []
    serving = {(variant, model) for variant, model, weight in seen.running if weight > 0}
    expected = seen.candidate_model if promoted else BOOTSTRAP_MODEL
    if {model for _, model in serving} != {expected}:
        broken.append(f"the endpoint serves {sorted(serving)}, not {expected} alone")
    left = [weight for _, model, weight in seen.running if model == seen.candidate_model]
    may_stay = gave_up and seen.restore_impossible and all(weight == 0 for weight in left)
    if not promoted and left and not may_stay:
        broken.append(f"the candidate is left in a variant of {seen.running_config}")
    if status == "failed" and not seen.restore_impossible:
        broken.append("the rollback gave up (outcome failed) although SageMaker would restore the champion")
    return broken


class _Writes:
    """A boto3 client whose writes (`put_item`, `publish`, ...) first pass `stall`."""

    def __init__(self, client: Any, stall: Callable[[], None], writes: tuple[str, ...]) -> None:
        self._client = client
        self._stall = stall
        self._writes = writes

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name in self._writes:
            self._stall()
        return attribute


class LateTask:
    """A task of an execution that is stopped while it runs: it starts, makes its checks, and its first
    change (an endpoint call, a ledger entry, a notification) lands only once `land()` is called."""

    WAIT_SECONDS = 30.0

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self._stalled = threading.Event()
        self._go = threading.Event()
        self.error: BaseException | None = None
        self.output: Any = None

    def stall(self) -> None:
        if self.thread is not None and threading.get_ident() == self.thread.ident:
            self._stalled.set()
            if not self._go.wait(self.WAIT_SECONDS):
                raise AssertionError("the late task was never let through")

    def start(self, run: Callable[[], Any]) -> bool:
        """Run the task until its first change; False if it ended without making any."""

        def target() -> None:
            try:
                self.output = run()
            except BaseException as error:
                self.error = error
            finally:
                self._stalled.set()

        self.thread = threading.Thread(target=target, name="late-task", daemon=True)
        self.thread.start()
        self._stalled.wait(self.WAIT_SECONDS)
        return self.thread.is_alive()

    def land(self) -> None:
        self._go.set()
        if self.thread is not None:
            self.thread.join(self.WAIT_SECONDS)
            self.thread = None


class Rig:
    """The synthesized rollout workflow on a fresh in-process moto for one run."""

    def __init__(self, template: RolloutTemplate, definition: Mapping[str, Any], modules: Mapping[str, Any]):
        self.template = template
        self.definition = definition
        self.modules = modules
        self._world: World | None = None
        self._clients: dict[str, Any] = {}
        self._new_client: Callable[..., Any] = boto3.client

    def _client(self, service: str, *args: Any, **options: Any) -> Any:
        if args or options:
            return self._new_client(service, *args, **options)
        if service not in self._clients:
            self._clients[service] = self._new_client(service)
        return self._clients[service]

    @contextmanager
    def serving(self) -> Iterator[None]:
        """InvokeEndpoint on real inference servers for every run of the rig (the gates ask the candidate):
        one runtime, so a run reuses the server of the same artifact a former run started; its metrics
        are on the running world's clock."""
        with serve_endpoints(clock=lambda: self._world.clock.now if self._world else 0.0):
            yield

    @contextmanager
    def world(self) -> Iterator[World]:
        # A client outlives its mock (moto's stubber is global): one per service serves every run, where
        # making them again was a tenth of a cell.
        with mock_aws(), moto_costs_kept(), mock.patch.object(boto3, "client", self._client):
            self._world = World(self)
            try:
                yield self._world
            finally:
                self._world = None


def _function_environment(template: RolloutTemplate, handler: str) -> Mapping[str, str]:
    [spec] = [f for f in template.functions if f.handler == handler]
    return spec.environment


def handler_modules(template: RolloutTemplate) -> Iterator[dict[str, ModuleType]]:
    """Every rollout handler (the abort's included), imported under its function's environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in template.functions[0].environment.items():
            patch.setenv(name, value)
        patch.setenv("POWERTOOLS_SERVICE_NAME", "rollout")
        yield {
            spec.handler: importlib.reload(importlib.import_module(spec.handler.rsplit(".", 1)[0]))
            for spec in template.functions
        }


ABORT_HANDLER = "lambdas.handlers.rollout_abort.handler"


def judging_the_average(settings: RolloutSettings) -> RolloutSettings:
    """The stack's settings with every endpoint's judge on the average latency: moto answers no percentile
    query (in-process it raises), so the local environment judges the average for the same reason."""
    endpoints = {
        name: endpoint.model_copy(
            update={
                "rollout": endpoint.rollout.model_copy(
                    update={
                        "judge": endpoint.rollout.judge.model_copy(update={"latency_statistic": "average"})
                    }
                )
            }
        )
        for name, endpoint in settings.endpoints.items()
    }
    return settings.model_copy(update={"endpoints": endpoints})


class World:
    """One run: moto's resources as the stack leaves them, the handlers wired to them, the interpreter."""

    def __init__(self, rig: Rig) -> None:
        template = rig.template
        self.template = template
        self._endpoint_settings = template.settings.endpoints[template.endpoint]
        self.clock = Clock()
        create_tables(template)
        create_parameters(template)
        self.queue_url = subscribe_to_topic(template.settings.topic_arn)
        create_endpoint_and_registry(template)
        self.late = LateTask()
        self.sagemaker = SlowEndpoint(boto3.client("sagemaker"), self.clock, self.late.stall)
        self.dynamodb = boto3.client("dynamodb")
        stalling_dynamodb = _Writes(self.dynamodb, self.late.stall, ("put_item",))
        self.cloudwatch = boto3.client("cloudwatch")
        self.sns = boto3.client("sns")
        use(
            build_services(
                judging_the_average(template.settings),
                sagemaker=cast("SageMakerControl", self.sagemaker),
                dynamodb=cast("DynamoDBClient", stalling_dynamodb),
                cloudwatch=self.cloudwatch,
                sns=cast(
                    "PublishesNotifications", _Writes(boto3.client("sns"), self.late.stall, ("publish",))
                ),
                s3=cast("ReadsObjects", boto3.client("s3")),
                clock=self.clock,
            )
        )
        abort_settings = load_abort_settings(_function_environment(template, ABORT_HANDLER))
        tasks: dict[str, TaskCall] = {}
        timeouts: dict[str, int] = {}
        for spec in template.functions:
            module = rig.modules[spec.handler]
            tasks[spec.arn] = _handler_call(module)
            timeouts[spec.arn] = spec.timeout_seconds
        self.timeouts: dict[str, int] = {}
        for name, state in rig.definition["States"].items():
            if state["Type"] == "Task" and state["Resource"] not in INTEGRATIONS:
                function = state.get("Parameters", {}).get("FunctionName", state["Resource"])
                self.timeouts[name] = timeouts[function]
        self.interpreter = Interpreter(rig.definition, abort_settings.state_machine_arn, tasks, self.clock)
        self.interpreter.integrations[SNS_PUBLISH] = self._publish
        self.interpreter.integrations[SET_WEIGHTS] = self._set_weights
        abort_module = rig.modules[ABORT_HANDLER]
        abort_module.use(
            abort_module.build_services(
                abort_settings,
                dynamodb=self.dynamodb,
                states=self.interpreter,
                appconfigdata=FakeAppConfigData(values=flag_values()),
                clock=self.clock,
            )
        )
        self._abort = _handler_call(abort_module)
        self._ended: list[Execution] = []
        # The statuses the stack's ended-execution rule delivers to the abort function.
        [rule] = [
            key
            for key in template.template.resources_of_type("AWS::Events::Rule")
            if key.startswith("RolloutEndedExecution")
        ]
        pattern = template.resolver.resolve(template.template.resources[rule]["Properties"]["EventPattern"])
        self.ended_statuses = frozenset(pattern["detail"]["status"])
        self.interpreter.on_ended = self._ended.append
        self.interpreter.between = self._between_states
        self._serving: tuple[Minute, Minute] | None = None
        self._written = 0
        self.abort_errors: list[str] = []
        self.aborts_accepted: list[bool] = []  # per accepted abort: was the promotion recorded before?
        self.package = ""
        self.rollout_id = ""
        self.live_holders: set[str] = set()
        self.group_override: str | None = None

    def close(self) -> None:
        use(None)

    def _set_weights(self, parameters: Any) -> Any:
        return self.sagemaker.update_endpoint_weights_and_capacities(**parameters)

    def _publish(self, parameters: Any) -> Any:
        """Step Functions' sns:publish: a Message given as an object is sent as its JSON."""
        message = parameters["Message"]
        return self.sns.publish(
            TopicArn=parameters["TopicArn"],
            Subject=parameters.get("Subject", ""),
            Message=message if isinstance(message, str) else json.dumps(message),
        )

    # the world's events --------------------------------------------------------------------------

    def abort(self, reason: str = ABORT_REASON) -> bool:
        """A person's abort of the endpoint, through the real abort function; True if it was accepted."""
        promoted = self._outcome() == "promoted"
        try:
            result = self._abort({"endpoint": self.template.endpoint, "reason": reason})
        except Exception as error:
            self.abort_errors.append(f"{type(error).__name__}: {error}")
            return False
        accepted = bool(result["aborted"])
        if accepted:
            self.aborts_accepted.append(promoted)
        return accepted

    def _deliver_ended(self) -> None:
        """EventBridge's "Execution Status Change" of the executions that ended, to the abort function."""
        while self._ended:
            self._execution_ended(self._ended.pop(0))

    def _execution_ended(self, execution: Execution) -> None:
        if execution.status not in self.ended_statuses:
            return
        event = {
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {
                "executionArn": execution.arn,
                "status": execution.status,
                "stateMachineArn": self.interpreter.machine_arn,
            },
        }
        promoted = self._outcome() == "promoted"
        try:
            result = self._abort(event)
        except Exception as error:
            self.abort_errors.append(f"{type(error).__name__}: {error}")
            return
        if result.get("aborted"):
            self.aborts_accepted.append(promoted)

    def _outcome(self) -> str | None:
        if not self.rollout_id:
            return None
        outcomes = [e for e in self.ledger() if e.kind is EntryKind.OUTCOME]
        return str(outcomes[0].payload.get("status")) if outcomes else None

    # setting up and starting ----------------------------------------------------------------------

    def serve(self, champion: Minute, challenger: Minute) -> None:
        """Both variants serve these minutes from a minute before now: the challenger its minute, the
        champion its minute's rates at the split the endpoint's weights set (as the judge's sample-ratio
        check expects). Written as the run goes, before each state, up to the minute the next state
        starts in, at the weights of that moment: weights that change in a state change them from its
        minute on, which the check leaves out with the next."""
        self._serving = (champion, challenger)
        self._written = int(self.clock.now) // 60 * 60 - 120
        self._write_minutes()

    def _write_minutes(self) -> None:
        if self._serving is None:
            return
        champion, challenger = self._serving
        running = [e.ready_at for e in self.interpreter.running()]
        upto = int(max([self.clock.now, *running])) // 60 * 60
        if self._written >= upto:
            return
        # No state runs while the minutes are written: one split for all of them.
        share = self._challenger_percent()
        served = champion.beside(challenger, share) if 0 < share < 100 else champion
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        while self._written < upto:
            self._written += 60
            for variant, minute in (("champion", served), ("challenger", challenger)):
                for namespace, data in self._minute_data(variant, self._written, minute).items():
                    by_namespace[namespace] += data
        # Into moto's CloudWatch as PutMetricData stores them, as SageMaker's own publishing does not pass
        # through an SDK either: the API's serialization was a fifth of a cell.
        cloudwatch = cloudwatch_backends[DEFAULT_ACCOUNT_ID][REGION]
        for namespace, data in by_namespace.items():
            cloudwatch.put_metric_data(namespace, data)

    def _challenger_percent(self) -> float:
        # moto's own endpoint: the slow endpoint's describe would settle a pending update.
        endpoint = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].endpoints[ENDPOINT_NAME]
        weights = {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in endpoint.production_variants}
        total = weights.get("champion", 0.0) + weights.get("challenger", 0.0)
        return 100 * weights.get("challenger", 0.0) / total if total else 0.0

    def _between_states(self) -> None:
        self._write_minutes()
        self._deliver_ended()

    def _minute_data(self, variant: str, start: int, minute: Minute) -> dict[str, list[dict[str, Any]]]:
        """A variant's minute as SageMaker and the feedback function publish it, by namespace."""
        business = self._endpoint_settings.business_metric
        dimensions = [
            {"Name": "EndpointName", "Value": ENDPOINT_NAME},
            {"Name": "VariantName", "Value": variant},
        ]
        at = datetime.fromtimestamp(start + 5, UTC).replace(tzinfo=None)  # as moto stores a parsed one

        def datum(name: str, total: float, count: int) -> dict[str, Any]:
            return {
                "MetricName": name,
                "Dimensions": dimensions,
                "Timestamp": at,
                "StatisticValues": {
                    "SampleCount": count,
                    "Sum": total,
                    "Minimum": total / count,
                    "Maximum": total / count,
                },
            }

        sagemaker = [
            datum("Invocations", minute.requests, 1),
            datum("Invocation5XXErrors", minute.errors_5xx, 1),
            datum("InvocationModelErrors", minute.model_errors, 1),
        ]
        if minute.latency_us is not None:
            sagemaker.append(datum("ModelLatency", minute.latency_us * minute.requests, minute.requests))
        data = {"AWS/SageMaker": sagemaker}
        if minute.trials:
            data[business.namespace] = [datum(business.name, minute.successes, minute.trials)]
        return data

    def register_package(self) -> str:
        sagemaker = self.sagemaker
        group = self.template.settings.endpoints[self.template.endpoint].model_package_group
        folder = f"models/{group}/v1"
        write_gate_files(folder, {"accuracy": 0.91, "auc": 0.95})
        created = sagemaker.create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{folder}/model.tar.gz"}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="Approved",
        )
        self.package = str(created["ModelPackageArn"])
        return self.package

    def hold_lock_elsewhere(self, holder: str) -> None:
        """A rollout outside this run holds the endpoint, for as long as this run lasts."""
        now = int(self.clock.now)
        self.dynamodb.put_item(
            TableName=self.template.table("LOCK_TABLE"),
            Item={
                "endpoint": {"S": ENDPOINT_NAME},
                "holder": {"S": holder},
                "acquired_at": {"N": str(now)},
                "expires_at": {"N": str(now + 24 * 3600)},
            },
        )
        self.live_holders.add(holder)

    def approval_event(self) -> dict[str, Any]:
        group = self.template.settings.endpoints[self.template.endpoint].model_package_group
        group = self.group_override or group
        return {
            "version": "0",
            "detail-type": "SageMaker Model Package State Change",
            "source": "aws.sagemaker",
            "region": REGION,
            "resources": [self.package],
            "detail": {
                "ModelPackageArn": self.package,
                "ModelPackageGroupName": group,
                "ModelApprovalStatus": "Approved",
            },
        }

    def start(self) -> str:
        started = self.interpreter.start_execution(
            stateMachineArn=self.interpreter.machine_arn,
            name="rollout",
            input=json.dumps(self.approval_event()),
        )
        self.rollout_id = str(started["executionArn"])
        return self.rollout_id

    # what is left -------------------------------------------------------------------------------------

    def ledger(self) -> list[LedgerEntry]:
        table = self.template.table("LEDGER_TABLE")
        return Ledger(DynamoDBLedgerStore(client=self.dynamodb, table_name=table)).entries(self.rollout_id)

    def observe(self) -> Observed:
        self._deliver_ended()
        self.interpreter.run_all()
        self.sagemaker.finish_updates()
        described = self.sagemaker.describe_endpoint(EndpointName=ENDPOINT_NAME)
        config = str(described["EndpointConfigName"])
        variants = self.sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
        weights = {
            v["VariantName"]: float(v.get("CurrentWeight", 0.0)) for v in described["ProductionVariants"]
        }
        key = {"endpoint": {"S": ENDPOINT_NAME}}
        lock = self.dynamodb.get_item(TableName=self.template.table("LOCK_TABLE"), Key=key)
        sqs = boto3.client("sqs")
        notes: list[dict[str, Any]] = []
        while True:
            received = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = received.get("Messages", [])
            if not messages:
                break
            for message in messages:
                notes.append(json.loads(json.loads(message["Body"])["Message"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        package = self.sagemaker.describe_model_package(ModelPackageName=self.package)
        return Observed(
            rollout_id=self.rollout_id,
            candidate_model=model_name_for(ENDPOINT_NAME, self.package),
            executions=list(self.interpreter.executions.values()),
            ledger=self.ledger(),
            package=dict(package),
            running=[
                (v["VariantName"], v["ModelName"], weights.get(v["VariantName"], 0.0)) for v in variants
            ],
            running_config=config,
            lock_holder=lock["Item"]["holder"]["S"] if "Item" in lock else None,
            notifications=notes,
            abort_accepted_before_promotion=any(not promoted for promoted in self.aborts_accepted),
            abort_errors=self.abort_errors,
            live_holders=frozenset(self.live_holders),
        )


def _handler_call(module: ModuleType) -> TaskCall:
    def call(event: Any) -> Any:
        return module.handler(event, LambdaContextStub())

    return call


# --- the faults ---------------------------------------------------------------------------------------


@dataclass
class Injection:
    """Injects `fault` at the first entry of `state` (and its retries); the scenario's own events too."""

    world: World
    scenario: Scenario
    state: str
    fault: Fault | None
    target: tuple[str, int] | None = None
    scenario_aborted: bool = False
    failed_updates: int = 0

    def __call__(
        self, interp: Interpreter, execution: Execution, state: str, attempt: int, run: Callable[[], Any]
    ) -> Any:
        if not self._scenario_events(execution, state, attempt):
            return None
        if state in self.scenario.broken_function:
            raise TaskFailure("InjectedFault", _cause("InjectedFault", f"{state}: the function is broken"))
        entry = (execution.arn, len(execution.entered))
        if state != self.state or self.fault is None or (self.target is not None and self.target != entry):
            return run()
        first = self.target is None
        self.target = entry
        fault = self.fault
        if fault in (Fault.RAISES, Fault.THROTTLED):
            error = "InjectedFault" if fault is Fault.RAISES else "ThrottlingException"
            raise TaskFailure(error, _cause(error, f"{state}: {fault.value}"))
        if not first:
            return run()
        if fault is Fault.TIMEOUT:
            run()
            raise TaskFailure(
                "Sandbox.Timedout", _cause("Sandbox.Timedout", "Task timed out after 60.00 seconds")
            )
        if fault in (Fault.UPDATE_FAILS, Fault.SILENT_ROLLBACK):
            self.world.sagemaker.next_ending = "fails" if fault is Fault.UPDATE_FAILS else "silent"
            return run()
        if fault is Fault.ABORT:
            output = run()
            self.world.abort()
            return output
        return self._late(interp, execution, state, run)

    def _scenario_events(self, execution: Execution, state: str, attempt: int) -> bool:
        """The scenario's own failing update and person's abort; False if the abort stopped the execution."""
        if (
            self.scenario.failing_update_at == state
            and attempt == 0
            and self.failed_updates < (self.scenario.failing_updates)
        ):
            self.failed_updates += 1
            self.world.sagemaker.next_ending = "fails"
        if self.scenario.abort_at == state and not self.scenario_aborted:
            self.scenario_aborted = True
            self.world.abort("a person aborts the rollout")
            return execution.status == "RUNNING"
        return True

    def _late(self, interp: Interpreter, execution: Execution, state: str, run: Callable[[], Any]) -> Any:
        """The task is under way when the abort stops its execution; its first change lands late."""
        late = self.world.late
        if not late.start(run) or not self.world.abort() or execution.status == "RUNNING":
            late.land()
            if late.error is not None:
                raise late.error
            return late.output
        # A stopped execution's task runs on at most until its function's timeout.
        deadline = interp.clock.now + self.world.timeouts[state]

        def landed() -> bool:
            if interp.clock.now >= deadline:
                return True
            return self.fault is Fault.LATE_MID and any(
                "Roll back to the champion" in e.entered
                and (e.state != "Roll back to the champion" or e.status != "RUNNING")
                for e in interp.executions.values()
                if e is not execution
            )

        interp.run_all(until=landed)
        late.land()
        return None


def _cause(error: str, message: str) -> str:
    return json.dumps({"errorType": error, "errorMessage": message})


@dataclass(frozen=True)
class CellResult:
    state: str
    fault: str
    scenario: str
    broken: tuple[str, ...]
    ends: tuple[str, ...]


def run_cell(rig: Rig, scenario: Scenario, state: str, fault: Fault | None) -> CellResult:
    """One rollout with `fault` injected at `state`, run to its end; the invariants it broke."""
    with rig.world() as world:
        try:
            world.register_package()
            world.serve(scenario.champion, scenario.challenger)
            if scenario.held_by_another:
                world.hold_lock_elsewhere(OTHER_ROLLOUT)
            if scenario.unknown_group:
                world.group_override = "mlrollout-dev-nobody"
            injection = Injection(world, scenario, state, fault)
            world.interpreter.injector = injection
            world.start()
            world.interpreter.run_all()
            seen = world.observe()
            seen.restore_impossible = scenario.restore_impossible
            seen.rollback_function_broken = scenario.rollback_function_broken
            broken = broken_invariants(seen)
            if fault is not None and injection.target is None:
                broken.insert(0, f"the scenario never entered {state!r}")
            ends = tuple(
                f"{e.name}: {e.status}{' ' + str(e.error) if e.error else ''}" for e in seen.executions
            )
            return CellResult(state, fault.value if fault else "none", scenario.name, tuple(broken), ends)
        finally:
            world.close()
