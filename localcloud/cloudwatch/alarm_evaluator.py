"""CloudWatch alarm evaluation on moto, which stores alarms and metric data but never evaluates them.

What is evaluated, and how faithfully: README.md.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import (
    Alarm,
    CloudWatchBackend,
    cloudwatch_backends,
)
from moto.events.models import events_backends
from moto.sns.exceptions import SNSNotFoundError
from moto.sns.models import sns_backends

from localcloud.cloudwatch.alarm_rules import RuleNode, parse_alarm_rule, rule_holds, rule_references
from localcloud.cloudwatch.decisions import decide
from localcloud.cloudwatch.metric_alarms import (
    MetricAlarmPlan,
    MetricStore,
    PublishedMetrics,
    alarm_datapoints,
    epoch_of,
    metric_alarm_plan,
)
from localcloud.cloudwatch.models import (
    COMPARISONS,
    DEFAULT_ACCOUNT_ID,
    EVENT_DETAIL_TYPE,
    EVENT_SOURCE,
    MOTO_CREATION_REASON,
    STATES,
    AlarmConfigurationError,
    AlarmEvaluationStopped,
    State,
    StateTransition,
)
from localcloud.cloudwatch.reasons import (
    datetime_at,
    iso,
    metric_configuration,
    metric_reason,
    metric_reason_data,
)


@dataclass
class BackgroundEvaluation:
    """The evaluation `AlarmEvaluator.running` keeps going; `failed` once an evaluation has raised."""

    evaluator: AlarmEvaluator
    failures: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def failed(self) -> bool:
        return bool(self.failures)


@dataclass
class _Change:
    alarm: Alarm
    state: State
    reason: str
    reason_data: dict[str, Any]
    configuration: dict[str, Any]


class AlarmEvaluator:
    """Evaluates the alarms of one account and region of moto's CloudWatch, as CloudWatch would at `clock()`.

    Use it inside `mock_aws()` (a `ThreadedMotoServer` in the same process shares the same backends)::

        evaluator = AlarmEvaluator(clock=lambda: now)
        transitions = evaluator.evaluate()          # once
        with evaluator.running(interval_seconds=1):  # or now and then continuously, in the background
            ...

    `transitions` keeps every change this evaluator made, oldest first.
    """

    def __init__(
        self,
        account_id: str = DEFAULT_ACCOUNT_ID,
        region: str = "us-east-1",
        clock: Callable[[], float] = time.time,
        *,
        send_events: bool = True,
        run_actions: bool = True,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.clock = clock
        self.send_events = send_events
        self.run_actions = run_actions
        self.transitions: list[StateTransition] = []
        self._lock = threading.Lock()
        self._published = PublishedMetrics()

    @property
    def backend(self) -> CloudWatchBackend:
        return cloudwatch_backends[self.account_id][self.region]

    def evaluate(self) -> list[StateTransition]:
        """Evaluate every metric alarm, then every composite alarm; return the state changes made.

        Every alarm is checked before any state changes: an alarm the evaluator cannot evaluate raises
        `AlarmConfigurationError` naming it, and nothing is changed.
        """
        with self._lock:
            now = self.clock()
            alarms = list(self.backend.alarms.values())
            metric_plans = [metric_alarm_plan(alarm) for alarm in alarms if alarm.rule is None]
            composites = _composite_order([alarm for alarm in alarms if alarm.rule is not None], alarms)
            for alarm in alarms:
                _adopt_creation_state(alarm)
            # Published datapoints indexed once; the ones moto computes on the fly (its providers'), anew.
            published = self._published.update(self.backend.metric_data)
            store = MetricStore(self.backend.aws_metric_data, beside=published)
            made: list[StateTransition] = []
            for plan in metric_plans:
                change = self._metric_change(plan, store, now)
                if change is not None:
                    made.append(self._apply(change, now))
            for _ in range(len(composites) + 1):  # children come first; repeat until nothing changes
                changes = [self._composite_change(alarm, rule, alarms) for alarm, rule in composites]
                applied = [self._apply(change, now) for change in changes if change is not None]
                made.extend(applied)
                if not applied:
                    break
            self.transitions.extend(made)
            return made

    @contextmanager
    def running(self, interval_seconds: float) -> Iterator[BackgroundEvaluation]:
        """Evaluate now, then every `interval_seconds` (real time) on a background thread until the block ends

        The first evaluation runs in the caller, so a bad alarm raises here. A later failure stops the
        thread (`failed` says so) and leaving the block raises `AlarmEvaluationStopped` with the cause.
        """
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
        self.evaluate()
        background = BackgroundEvaluation(self)

        def loop() -> None:
            while not background.stop.wait(interval_seconds):
                try:
                    self.evaluate()
                except Exception as error:  # surfaced when the block ends
                    background.failures.append(error)
                    return

        thread = threading.Thread(target=loop, name="cloudwatch-alarm-evaluator", daemon=True)
        thread.start()
        try:
            yield background
        finally:
            background.stop.set()
            thread.join(timeout=max(30.0, 2 * interval_seconds))
            if background.failures:
                failure = background.failures[0]
                raise AlarmEvaluationStopped(f"alarm evaluation failed: {failure}") from failure

    def _metric_change(self, plan: MetricAlarmPlan, store: MetricStore, now: float) -> _Change | None:
        threshold, (compare, _) = plan.threshold, COMPARISONS[plan.comparison]
        decision = decide(
            alarm_datapoints(plan, store, now),
            is_breaching=lambda value: compare(value, threshold),
            evaluation_periods=plan.evaluation_periods,
            datapoints_to_alarm=plan.datapoints_to_alarm,
            treat_missing_data=plan.treat_missing_data,
        )
        alarm = plan.alarm
        if decision.state is None or decision.state == alarm.state_value:
            return None
        if plan.low_sample_minimum is not None and any(
            (point.sample_count or 0) < plan.low_sample_minimum
            for point in decision.evaluated
            if point.value is not None
        ):
            return None  # EvaluateLowSampleCountPercentile: ignore
        return _Change(
            alarm=alarm,
            state=decision.state,
            reason=metric_reason(plan, decision, alarm.state_value, decision.state),
            reason_data=metric_reason_data(plan, decision, now),
            configuration=metric_configuration(alarm),
        )

    def _composite_change(self, alarm: Alarm, rule: RuleNode, alarms: Sequence[Alarm]) -> _Change | None:
        children = _children(alarm, rule, alarms)
        state: State = "ALARM" if rule_holds(rule, lambda name: children[name].state_value) else "OK"
        if state == alarm.state_value:
            return None
        triggering = sorted(children.values(), key=lambda child: epoch_of(child.state_updated_timestamp))[-1:]
        reason = (
            f"{triggering[0].alarm_arn} transitioned to {triggering[0].state_value} at "
            f"{_epoch_text(triggering[0].state_updated_timestamp)}"
            if triggering
            else f"The alarm rule {alarm.rule} evaluated to {'TRUE' if state == 'ALARM' else 'FALSE'}"
        )
        reason_data = {
            "triggeringAlarms": [
                {
                    "arn": child.alarm_arn,
                    "state": {
                        "value": child.state_value,
                        "timestamp": iso(aware(child.state_updated_timestamp)),
                    },
                }
                for child in triggering
            ]
        }
        configuration: dict[str, Any] = {"alarmRule": alarm.rule}
        if alarm.description:
            configuration["description"] = alarm.description
        return _Change(alarm, state, reason, reason_data, configuration)

    def _apply(self, change: _Change, now: float) -> StateTransition:
        alarm = change.alarm
        moment = datetime_at(now)
        previous = {
            "value": alarm.state_value,
            "reason": alarm.state_reason,
            "reasonData": alarm.state_reason_data,
            "timestamp": iso(aware(alarm.state_updated_timestamp)),
        }
        if previous["reasonData"] in (None, "", "{}"):
            del previous["reasonData"]
        reason_data = json.dumps(change.reason_data)
        alarm.update_state(change.reason, reason_data, change.state)
        alarm.state_updated_timestamp = moment.replace(tzinfo=None)  # moto keeps naive UTC times
        transition = StateTransition(
            alarm_name=alarm.name,
            alarm_arn=alarm.alarm_arn,
            alarm_type="CompositeAlarm" if alarm.rule is not None else "MetricAlarm",
            previous_state=_state(previous["value"]),
            state=change.state,
            reason=change.reason,
            reason_data=reason_data,
            timestamp=moment,
        )
        detail = {
            "alarmName": alarm.name,
            "state": {
                "value": change.state,
                "reason": change.reason,
                "reasonData": reason_data,
                "timestamp": iso(moment),
            },
            "previousState": previous,
            "configuration": change.configuration,
        }
        if self.send_events:
            self._send_event(alarm, detail, now)
        if self.run_actions and alarm.actions_enabled:
            self._notify(alarm, transition)
        return transition

    def _send_event(self, alarm: Alarm, detail: dict[str, Any], now: float) -> None:
        entries = events_backends[self.account_id][self.region].put_events(
            [
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": EVENT_DETAIL_TYPE,
                    "Resources": [alarm.alarm_arn],
                    "Detail": json.dumps(detail),
                    "Time": now,
                }
            ]
        )
        failed = [entry for entry in entries if "ErrorCode" in entry]
        if failed:
            raise RuntimeError(f"EventBridge refused the state change event of alarm {alarm.name}: {failed}")

    def _notify(self, alarm: Alarm, transition: StateTransition) -> None:
        actions = {
            "ALARM": alarm.alarm_actions,
            "OK": alarm.ok_actions,
            "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
        }[transition.state]
        for action in actions or []:
            parts = str(action).split(":")
            if len(parts) < 6 or parts[2] != "sns":
                continue  # Auto Scaling, EC2, Systems Manager and Lambda actions are not run
            message = _notification(alarm, transition, self.account_id, self.region)
            subject = f'{transition.state}: "{alarm.name}" in {self.region}'[:100]
            try:
                sns_backends[parts[4]][parts[3]].publish(
                    message=json.dumps(message), arn=action, subject=subject
                )
            except SNSNotFoundError:
                continue  # CloudWatch does not check that an action's topic exists


def _state(value: str) -> State:
    for state in STATES:
        if value == state:
            return state
    raise AssertionError(f"moto holds an alarm in unknown state {value!r}")


def _adopt_creation_state(alarm: Alarm) -> None:
    """moto creates alarms in OK, CloudWatch in INSUFFICIENT_DATA: a never-changed alarm is the latter."""
    if alarm.state_value == "OK" and alarm.state_reason == MOTO_CREATION_REASON and not alarm.history:
        alarm.state_value = "INSUFFICIENT_DATA"


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _epoch_text(moment: datetime) -> str:
    return aware(moment).astimezone(UTC).strftime("%A %d %B, %Y %H:%M:%S UTC")


def find_alarm(reference: str, alarms: Sequence[Alarm]) -> Alarm | None:
    for alarm in alarms:
        if reference in (alarm.name, alarm.alarm_arn):
            return alarm
    return None


def _children(alarm: Alarm, rule: RuleNode, alarms: Sequence[Alarm]) -> dict[str, Alarm]:
    children: dict[str, Alarm] = {}
    for reference in rule_references(rule):
        child = find_alarm(reference, alarms)
        if child is None:
            raise AlarmConfigurationError(
                f"composite alarm {alarm.name}: its rule names no alarm {reference!r}"
            )
        children[reference] = child
    return children


def _composite_order(composites: Sequence[Alarm], alarms: Sequence[Alarm]) -> list[tuple[Alarm, RuleNode]]:
    """Composites with their rules, children before parents; members of a cycle are left out."""
    rules: dict[str, RuleNode] = {}
    for alarm in composites:
        try:
            rules[alarm.name] = parse_alarm_rule(str(alarm.rule))
        except AlarmConfigurationError as error:
            raise AlarmConfigurationError(f"composite alarm {alarm.name}: {error}") from None
    depends = {
        alarm.name: {
            child.name
            for child in _children(alarm, rules[alarm.name], alarms).values()
            if child.rule is not None
        }
        for alarm in composites
    }
    ordered: list[tuple[Alarm, RuleNode]] = []
    done: set[str] = set()
    pending = list(composites)
    while pending:
        ready = [alarm for alarm in pending if depends[alarm.name] <= done]
        if not ready:
            break  # the rest wait on a cycle: CloudWatch stops evaluating them
        for alarm in ready:
            ordered.append((alarm, rules[alarm.name]))
            done.add(alarm.name)
            pending.remove(alarm)
    return ordered


def _notification(alarm: Alarm, transition: StateTransition, account_id: str, region: str) -> dict[str, Any]:
    """CloudWatch's SNS message for a state change (the Region is the region code here, not its long name)."""
    message: dict[str, Any] = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": iso(aware(alarm.configuration_updated_timestamp)),
        "NewStateValue": transition.state,
        "NewStateReason": transition.reason,
        "StateChangeTime": iso(transition.timestamp),
        "Region": region,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": transition.previous_state,
        "OKActions": list(alarm.ok_actions or []),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
    }
    if alarm.rule is not None:
        message["AlarmRule"] = alarm.rule
        message["TriggeringChildren"] = json.loads(transition.reason_data).get("triggeringAlarms", [])
        return message
    trigger: dict[str, Any] = {
        "Period": alarm.period,
        "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.datapoints_to_alarm or alarm.evaluation_periods,
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.treat_missing_data or "missing",
    }
    if alarm.metric_data_queries:
        trigger["Metrics"] = metric_configuration(alarm)["metrics"]
    else:
        trigger.update(
            MetricName=alarm.metric_name,
            Namespace=alarm.namespace,
            StatisticType="ExtendedStatistic" if alarm.extended_statistic else "Statistic",
            Statistic=(alarm.extended_statistic or str(alarm.statistic).upper()),
            Unit=alarm.unit,
            Dimensions=[{"value": d.value, "name": d.name} for d in alarm.dimensions],
        )
    message["Trigger"] = trigger
    return message


# --- a template's alarms -------------------------------------------------------------------------------
