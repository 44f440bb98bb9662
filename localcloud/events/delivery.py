"""EventBridge delivering to Lambda functions and Step Functions state machines, on moto; scheduled
rules match no event. What is delivered, and how: README.md.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.awslambda.models import lambda_backends
from moto.events.models import Rule
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from moto.utilities.arns import parse_arn

MOTO_VERSION = "5.2.5"
EVENT_INVOCATION = {"x-amz-invocation-type": "Event"}
ADDED_SERVICES = ("lambda", "states")


class EventDeliveryError(RuntimeError):
    """A target this emulation cannot deliver to, named."""


@dataclass(frozen=True)
class Delivery:
    rule: str
    target_arn: str
    payload: Any
    result: Any = None
    error: str | None = None


@dataclass
class EventDeliveries:
    """Every delivery to a Lambda or Step Functions target while open, in the order they finished."""

    finished: list[Delivery] = field(default_factory=list)
    _pending: set[threading.Thread] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, timeout_seconds: float = 30.0) -> list[Delivery]:
        """Block until the asynchronous invocations started so far have ended; what has finished."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return list(self.finished)
            for thread in pending:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    raise TimeoutError(f"an event delivery still runs after {timeout_seconds} s")

    def to(self, target_arn_suffix: str) -> list[Delivery]:
        return [d for d in self.finished if d.target_arn.endswith(target_arn_suffix)]

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self.finished.append(delivery)

    def _start(self, thread: threading.Thread) -> None:
        with self._lock:
            self._pending.add(thread)
        thread.start()

    def _done(self, thread: threading.Thread) -> None:
        with self._lock:
            self._pending.discard(thread)


# moto's own method, as imported: the wrappers here replace it on the class while they are open.
_MOTO_SEND_TO_TARGETS = Rule.send_to_targets


def check_moto() -> None:
    code = _MOTO_SEND_TO_TARGETS.__code__
    if code.co_varnames[: code.co_argcount] != ("self", "original_event", "transform_input"):
        raise EventDeliveryError(
            f"moto's Rule.send_to_targets changed (written for moto {MOTO_VERSION}): "
            f"{code.co_varnames[: code.co_argcount]}"
        )


@contextmanager
def deliver_events() -> Iterator[EventDeliveries]:
    """While open, events matching a rule reach its Lambda and Step Functions targets too."""
    check_moto()
    deliveries = EventDeliveries()
    original = Rule.send_to_targets

    def send_to_targets(rule: Rule, original_event: Any, transform_input: bool = True) -> None:
        if is_schedule_only(rule):
            # A rule with a schedule and no pattern matches no event (moto's empty pattern matches all).
            return
        # moto raises NotImplementedError for a target service it lacks: it gets only its own.
        own = copy.copy(rule)
        own.targets = [t for t in rule.targets if parse_arn(t["Arn"]).service not in ADDED_SERVICES]
        original(own, original_event, transform_input)
        if rule.state != "ENABLED" or not rule.event_pattern.matches_event(original_event):
            return
        for target in rule.targets:
            arn = parse_arn(target["Arn"])
            if arn.service not in ADDED_SERVICES:
                continue
            payload = target_input(target, original_event)
            if arn.service == "lambda":
                _invoke_async(deliveries, rule, target["Arn"], payload)
            else:
                deliveries._record(_start_execution(rule, target["Arn"], payload))

    with mock.patch.object(Rule, "send_to_targets", send_to_targets):
        yield deliveries
    deliveries.wait()


@contextmanager
def schedules_match_no_event() -> Iterator[None]:
    """While open, moto sends no event to a schedule-only rule's targets, with or without
    `deliver_events` (moto's empty pattern matches every event, and raises for a state machine target)."""
    check_moto()
    original = Rule.send_to_targets

    def send_to_targets(rule: Rule, original_event: Any, transform_input: bool = True) -> None:
        if not is_schedule_only(rule):
            original(rule, original_event, transform_input)

    with mock.patch.object(Rule, "send_to_targets", send_to_targets):
        yield


def is_schedule_only(rule: Rule) -> bool:
    """A scheduled rule without an event pattern: EventBridge runs it on its schedule, never on an event.
    Schedules are not run locally (a test starts what a schedule would)."""
    return bool(rule.scheduled_expression) and not rule.event_pattern.dump()


def target_input(target: dict[str, Any], event: Any) -> Any:
    """What the target receives: the constant Input, the InputPath's part, the InputTransformer's output,
    or the event."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputTransformer" in target:
        return transformed_input(target["InputTransformer"], event)
    path = target.get("InputPath")
    if not path or path == "$":
        return event
    if not path.startswith("$."):
        raise EventDeliveryError(f"InputPath {path!r} is not supported locally (use $ or $.a.b)")
    value = event
    for key in path[2:].split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_PATH_STEP = re.compile(r"\.([A-Za-z0-9_\-/]+)|\[(\d+)\]")
_RULE_VARIABLES = ("aws.events.rule-arn", "aws.events.rule-name")


def transformed_input(transformer: dict[str, Any], event: Any) -> Any:
    """An InputTransformer's output for the event (see the module's docstring)."""
    values = {
        name: json_path_value(event, path) for name, path in transformer.get("InputPathsMap", {}).items()
    }
    values["aws.events.event"] = {k: v for k, v in event.items() if k != "detail"}
    values["aws.events.event.json"] = event
    values["aws.events.event.ingestion-time"] = event.get("time")
    template = str(transformer["InputTemplate"])
    is_json = template.strip().startswith(("{", "["))
    pieces: list[str] = []
    in_string = escaped = False
    position = 0
    while position < len(template):
        char = template[position]
        found = _PLACEHOLDER.match(template, position) if char == "<" else None
        if found and found.group(1) in values:
            value = values[found.group(1)]
            text = value if isinstance(value, str) else ("" if value is None else json.dumps(value))
            if not is_json:
                pieces.append(text)
            elif in_string:
                pieces.append(json.dumps(text)[1:-1])
            else:
                pieces.append(json.dumps(value))
            position = found.end()
            continue
        if found and found.group(1) in _RULE_VARIABLES:
            raise EventDeliveryError(f"InputTemplate variable <{found.group(1)}> is not supported locally")
        if in_string and escaped:
            escaped = False
        elif in_string and char == "\\":
            escaped = True
        elif char == '"':
            in_string = not in_string
        pieces.append(char)
        position += 1
    text = "".join(pieces)
    if not is_json:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise EventDeliveryError(
            f"InputTemplate {template!r} gives invalid JSON {text!r}: {error}"
        ) from error


def json_path_value(event: Any, path: str) -> Any:
    """The value at an InputPathsMap path (``$``, ``$.a.b``, ``$.a[0].b``); None where it is missing."""
    if path == "$":
        return event
    if not path.startswith("$"):
        raise EventDeliveryError(f"InputPathsMap path {path!r} must start with $")
    value, position = event, 1
    while position < len(path):
        step = _PATH_STEP.match(path, position)
        if step is None:
            raise EventDeliveryError(f"InputPathsMap path {path!r} is not supported locally (dots, [n])")
        key, index = step.groups()
        if key is not None:
            value = value.get(key) if isinstance(value, dict) else None
        else:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
        position = step.end()
    return value


def _invoke_async(deliveries: EventDeliveries, rule: Rule, function_arn: str, payload: Any) -> None:
    arn = parse_arn(function_arn)
    name = arn.resource_id.split(":")[0]

    def invoke() -> None:
        try:
            function = lambda_backends[arn.account][arn.region].get_function(name)
            response_headers: dict[str, str] = {}
            raw = function.invoke(json.dumps(payload), dict(EVENT_INVOCATION), response_headers)
            result = json.loads(raw) if raw else None
            error = response_headers.get("x-amz-function-error")
            deliveries._record(Delivery(rule.name, function_arn, payload, result, error))
        except Exception as failure:
            deliveries._record(Delivery(rule.name, function_arn, payload, None, repr(failure)))
        finally:
            deliveries._done(threading.current_thread())

    deliveries._start(threading.Thread(target=invoke, name=f"event-{rule.name}", daemon=True))


def _start_execution(rule: Rule, machine_arn: str, payload: Any) -> Delivery:
    arn = parse_arn(machine_arn)
    # The executing backend when moto runs state machines, the plain one otherwise.
    backend = stepfunctions_backend(arn.account, arn.region)
    execution = backend.start_execution(
        machine_arn, name=str(uuid.uuid4()), execution_input=json.dumps(payload)
    )
    return Delivery(rule.name, machine_arn, payload, {"executionArn": execution.execution_arn})
