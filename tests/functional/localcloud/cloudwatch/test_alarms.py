"""CloudWatch alarm evaluation on moto: every rule on its own, then the synthesized dev stack's alarms.

Alarms and datapoints go in through boto3 against moto; `AlarmEvaluator` evaluates at a fixed clock; the
states come back through DescribeAlarms, DescribeAlarmHistory, EventBridge (a rule with an SQS target)
and SNS. The missing-data tables are the CloudWatch User Guide's, row by row.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from localcloud.cloudformation.template import StackTemplate, app_template, load_stacks, local_resolver
from localcloud.cloudformation.template_alarms import put_template_alarms
from localcloud.cloudwatch.alarm_evaluator import AlarmEvaluator
from localcloud.cloudwatch.models import (
    EVENT_DETAIL_TYPE,
    EVENT_SOURCE,
    AlarmConfigurationError,
    AlarmEvaluationStopped,
)
from localcloud.cloudwatch.responses import emulate_alarm_apis
from tests.infra.conftest import shared_outdir

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

ACCOUNT = "123456789012"
REGION = "us-east-1"
NAMESPACE = "Local/Test"
METRIC = "Latency"
# 2026-01-01T00:00:00Z; the evaluations happen 20 s into a minute, as CloudWatch's do at any second.
T0 = 1767225600


@dataclass
class Clock:
    now: float = T0 + 10 * 60 + 20

    def __call__(self) -> float:
        return self.now

    @property
    def minute(self) -> int:
        """The start of the current, partial minute: the newest evaluated period ends here."""
        return int(self.now // 60) * 60


@dataclass
class Cloud:
    cloudwatch: CloudWatchClient
    sqs: Any  # no SQS type stubs in this venv
    clock: Clock
    evaluator: AlarmEvaluator
    events: list[str] = field(default_factory=list)

    def put_values(
        self,
        values: Sequence[float | None],
        *,
        metric: str = METRIC,
        dimensions: dict[str, str] | None = None,
        period: int = 60,
        namespace: str = NAMESPACE,
    ) -> None:
        """One value per period (None: none), oldest first, the last in the newest evaluated period."""
        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()],
                "Value": value,
                "Timestamp": datetime.fromtimestamp(self.clock.minute - period * (len(values) - i), UTC),
            }
            for i, value in enumerate(values)
            if value is not None
        ]
        for start in range(0, len(data), 20):
            self.cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + 20])  # type: ignore[arg-type]

    def put_alarm(self, name: str, **settings: Any) -> None:
        alarm: dict[str, Any] = {
            "Namespace": NAMESPACE,
            "MetricName": METRIC,
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 5.0,
            "ComparisonOperator": "GreaterThanThreshold",
        }
        alarm.update(settings)
        if "Metrics" in settings or "ExtendedStatistic" in settings:
            for key in (
                ("Namespace", "MetricName", "Statistic", "Period")
                if "Metrics" in settings
                else ("Statistic",)
            ):
                alarm.pop(key)
        self.cloudwatch.put_metric_alarm(AlarmName=name, **alarm)

    def state(self, name: str) -> str:
        found = self.cloudwatch.describe_alarms(
            AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
        alarms = [*found["MetricAlarms"], *found["CompositeAlarms"]]
        assert len(alarms) == 1, f"alarm {name} not found"
        return str(alarms[0]["StateValue"])

    def alarm(self, name: str) -> dict[str, Any]:
        return dict(self.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0])

    def received(self, queue_url: str) -> list[dict[str, Any]]:
        """Every message on the queue now (moto delivers synchronously, so nothing is in flight)."""
        messages: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with mock_aws(), emulate_alarm_apis():
        clock = Clock()
        yield Cloud(
            cloudwatch=boto3.client("cloudwatch", region_name=REGION),
            sqs=boto3.client("sqs", region_name=REGION),
            clock=clock,
            evaluator=AlarmEvaluator(account_id=ACCOUNT, region=REGION, clock=clock),
        )


def queue_for_state_changes(cloud: Cloud, pattern: dict[str, Any]) -> str:
    """An EventBridge rule on the default bus with an SQS target; the queue's URL."""
    queue_url = cloud.sqs.create_queue(QueueName="alarm-events")["QueueUrl"]
    arn = cloud.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="alarm-state-changes", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="alarm-state-changes", Targets=[{"Id": "queue", "Arn": arn}])
    return str(queue_url)


# --- statistics, periods, comparisons --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statistic", "value"),
    [("Sum", 9.0), ("Average", 3.0), ("Minimum", 1.0), ("Maximum", 6.0), ("SampleCount", 3.0)],
)
def test_each_statistic_is_computed_over_the_period(cloud: Cloud, statistic: str, value: float) -> None:
    stamp = datetime.fromtimestamp(cloud.clock.minute - 30, UTC)
    cloud.cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[{"MetricName": METRIC, "Value": v, "Timestamp": stamp} for v in (1.0, 2.0, 6.0)],
    )
    cloud.put_alarm("just-below", Statistic=statistic, Threshold=value - 0.5)
    cloud.put_alarm("at-value", Statistic=statistic, Threshold=value)

    cloud.evaluator.evaluate()

    assert (cloud.state("just-below"), cloud.state("at-value")) == ("ALARM", "OK")
    reason_data = json.loads(cloud.alarm("just-below")["StateReasonData"])
    assert reason_data["statistic"] == statistic
    assert reason_data["recentDatapoints"] == [value]
    assert reason_data["evaluatedDatapoints"] == [
        {"timestamp": _iso(cloud.clock.minute - 60), "sampleCount": 3.0, "value": value}
    ]


def test_datapoints_published_between_evaluations_count_and_a_fresh_moto_forgets_the_old_ones() -> None:
    """The evaluator indexes each published datapoint once (an evaluation a second over a growing store
    was a third of the demo's main process): later data, even out of time order, still counts, and a
    fresh moto's evaluation sees only its own."""
    clock = Clock()
    evaluator = AlarmEvaluator(account_id=ACCOUNT, region=REGION, clock=clock)

    def cloud() -> Cloud:
        return Cloud(
            cloudwatch=boto3.client("cloudwatch", region_name=REGION),
            sqs=boto3.client("sqs", region_name=REGION),
            clock=clock,
            evaluator=evaluator,
        )

    with mock_aws(), emulate_alarm_apis():
        first = cloud()
        first.put_alarm("over-five", Statistic="Maximum", Threshold=5.0)
        first.put_values([1.0])
        evaluator.evaluate()
        assert first.state("over-five") == "OK"
        clock.now += 60
        first.put_values([9.0])
        # Older than what was indexed: placed by its time, outside the evaluated period.
        first.put_values([99.0, None, None])
        evaluator.evaluate()
        assert first.state("over-five") == "ALARM"
        assert json.loads(first.alarm("over-five")["StateReasonData"])["recentDatapoints"] == [9.0]
    with mock_aws(), emulate_alarm_apis():
        fresh = cloud()
        fresh.put_alarm("over-five", Statistic="Maximum", Threshold=5.0)
        fresh.put_values([2.0])
        evaluator.evaluate()
        assert fresh.state("over-five") == "OK"


def test_a_period_spans_whole_minutes_up_to_the_current_one_which_is_not_evaluated(cloud: Cloud) -> None:
    end = cloud.clock.minute
    for offset, value in [(-301, 1000.0), (-300, 1.0), (-1, 2.0), (0, 500.0), (15, 700.0)]:
        cloud.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {"MetricName": METRIC, "Value": value, "Timestamp": datetime.fromtimestamp(end + offset, UTC)}
            ],
        )
    cloud.put_alarm("five-minutes", Statistic="Sum", Period=300, Threshold=2.5)

    cloud.evaluator.evaluate()

    alarm = cloud.alarm("five-minutes")
    reason_data = json.loads(alarm["StateReasonData"])
    assert reason_data["recentDatapoints"] == [3.0]  # 1 + 2: the minute before and the current one are out
    assert reason_data["startDate"] == _iso(end - 300)
    assert reason_data["period"] == 300
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"] == (
        "Threshold Crossed: 1 out of the last 1 datapoints "
        f"[3.0 ({datetime.fromtimestamp(end - 300, UTC):%d/%m/%y %H:%M:%S})] was greater than the threshold "
        "(2.5) (minimum 1 datapoint for INSUFFICIENT_DATA -> ALARM transition)."
    )


@pytest.mark.parametrize(
    ("comparison", "expected_below_at_above"),
    [
        ("GreaterThanThreshold", ("OK", "OK", "ALARM")),
        ("GreaterThanOrEqualToThreshold", ("OK", "ALARM", "ALARM")),
        ("LessThanThreshold", ("ALARM", "OK", "OK")),
        ("LessThanOrEqualToThreshold", ("ALARM", "ALARM", "OK")),
    ],
)
def test_each_comparison_operator(
    cloud: Cloud, comparison: str, expected_below_at_above: tuple[str, ...]
) -> None:
    cloud.put_values([5.0])
    for name, threshold in [("value-below", 6.0), ("value-at", 5.0), ("value-above", 4.0)]:
        cloud.put_alarm(name, ComparisonOperator=comparison, Threshold=threshold)

    cloud.evaluator.evaluate()

    assert (
        tuple(cloud.state(name) for name in ("value-below", "value-at", "value-above"))
        == expected_below_at_above
    )


def test_an_anomaly_band_comparison_is_refused_by_name_and_nothing_changes(cloud: Cloud) -> None:
    cloud.put_values([50.0])
    cloud.put_alarm("plain", Threshold=1.0)
    cloud.cloudwatch.put_metric_alarm(
        AlarmName="banded",
        ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold",
        EvaluationPeriods=1,
        ThresholdMetricId="band",
        Metrics=[
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": METRIC},
                    "Period": 60,
                    "Stat": "Average",
                },
            },
            {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"},
        ],
    )

    with pytest.raises(
        AlarmConfigurationError, match="alarm banded: LessThanLowerOrGreaterThanUpperThreshold"
    ):
        cloud.evaluator.evaluate()
    assert cloud.alarm("plain")["StateReason"] == "Unchecked: Initial alarm creation"


# --- M out of N and missing data: the User Guide's tables ----------------------------------------------

TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
RETAIN = "retain"


@pytest.mark.parametrize(
    ("datapoints_to_alarm", "pattern", "expected"),
    [
        # 3 out of 3; the states expected for missing, ignore, breaching and notBreaching.
        (3, "0 - X - X", ("OK", "OK", "OK", "OK")),
        (3, "0 - - - -", ("OK", "OK", "OK", "OK")),
        (3, "- - - - -", ("INSUFFICIENT_DATA", RETAIN, "ALARM", "OK")),
        (3, "0 X X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
        (3, "- - - - X", ("INSUFFICIENT_DATA", RETAIN, "ALARM", "OK")),
        (3, "X - - - -", ("ALARM", RETAIN, "ALARM", "OK")),
        # 2 out of 3.
        (2, "0 - X - X", ("ALARM", "ALARM", "ALARM", "ALARM")),
        (2, "0 0 X 0 X", ("ALARM", "ALARM", "ALARM", "ALARM")),
        (2, "0 - X - -", ("OK", "OK", "ALARM", "OK")),
        (2, "- - - - 0", ("OK", "OK", "ALARM", "OK")),
        (2, "- - - - X", ("INSUFFICIENT_DATA", RETAIN, "ALARM", "OK")),
    ],
)
def test_missing_data_tables_of_the_user_guide(
    cloud: Cloud, datapoints_to_alarm: int, pattern: str, expected: tuple[str, ...]
) -> None:
    """0 is a datapoint within the threshold, X a breaching one, - a missing one; oldest first."""
    cloud.put_values([{"0": 1.0, "X": 10.0, "-": None}[symbol] for symbol in pattern.split()])
    for treatment in TREATMENTS:
        cloud.put_alarm(
            treatment, EvaluationPeriods=3, DatapointsToAlarm=datapoints_to_alarm, TreatMissingData=treatment
        )
        # A state to retain that no row's evaluation gives: OK via SetAlarmState is overwritten by any
        # evaluation that decides; so retention is seen as OK where INSUFFICIENT_DATA or ALARM would differ.
        cloud.cloudwatch.set_alarm_state(AlarmName=treatment, StateValue="OK", StateReason="set by the test")

    cloud.evaluator.evaluate()

    states = tuple(cloud.state(treatment) for treatment in TREATMENTS)
    assert states == tuple("OK" if state == RETAIN else state for state in expected)
    if RETAIN in expected:
        assert cloud.alarm("ignore")["StateReason"] == "set by the test"


def test_missing_treatment_keeps_a_new_alarm_in_insufficient_data_and_ignore_keeps_it_too(
    cloud: Cloud,
) -> None:
    cloud.put_alarm("missing", TreatMissingData="missing")
    cloud.put_alarm("ignore", TreatMissingData="ignore")

    transitions = cloud.evaluator.evaluate()

    assert (cloud.state("missing"), cloud.state("ignore")) == ("INSUFFICIENT_DATA", "INSUFFICIENT_DATA")
    assert transitions == []  # a new alarm already is INSUFFICIENT_DATA, as in CloudWatch


def test_m_out_of_n_counts_breaching_datapoints_that_need_not_be_consecutive(cloud: Cloud) -> None:
    cloud.put_alarm("three-of-five", EvaluationPeriods=5, DatapointsToAlarm=3)
    cloud.put_values([10.0, 1.0, 10.0, 1.0, 10.0])
    cloud.evaluator.evaluate()
    assert cloud.state("three-of-five") == "ALARM"
    assert cloud.alarm("three-of-five")["StateReason"].startswith(
        "Threshold Crossed: 3 out of the last 5 datapoints [10.0 ("
    )

    cloud.clock.now += 60  # the oldest breaching minute leaves the five; the new one is fine
    cloud.put_values([1.0])
    cloud.evaluator.evaluate()
    assert cloud.state("three-of-five") == "OK"
    assert cloud.alarm("three-of-five")["StateReason"].endswith(
        "were not greater than the threshold (5.0) (minimum 3 datapoints for ALARM -> OK transition)."
    )


# --- metric math and percentiles --------------------------------------------------------------------

ERROR_RATE = "IF(invocations >= 20, 100 * FILL(errors, 0) / invocations, 0)"


def error_rate_alarm(cloud: Cloud, name: str, variant: str, treatment: str = "notBreaching") -> None:
    def metric(query_id: str, metric_name: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": metric_name,
                    "Dimensions": [{"Name": "VariantName", "Value": variant}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        }

    cloud.put_alarm(
        name,
        Metrics=[
            {"Id": "rate", "Expression": ERROR_RATE, "Label": "error rate", "ReturnData": True},
            metric("errors", "Errors"),
            metric("invocations", "Invocations"),
        ],
        Threshold=1.0,
        TreatMissingData=treatment,
    )


@pytest.mark.parametrize(
    ("traffic", "treatment", "expected", "rate"),
    [
        (([60.0, 40.0], [1.0, 2.0]), "notBreaching", "ALARM", 3.0),  # 3 errors in 100 requests: 3 %
        (([10.0], [9.0]), "notBreaching", "OK", 0.0),  # 90 % of 10 requests: under the volume floor
        (([100.0], []), "notBreaching", "OK", 0.0),  # no error datapoint: FILL makes it 0 %
        (([], [5.0]), "notBreaching", "OK", None),  # no traffic: no datapoint, not breaching
        (([], [5.0]), "missing", "INSUFFICIENT_DATA", None),
    ],
)
def test_metric_math_error_rate_with_fill_and_the_volume_floor(
    cloud: Cloud, traffic: tuple[list[float], list[float]], treatment: str, expected: str, rate: float | None
) -> None:
    """`traffic`: the invocations and the errors, each datapoint in the newest minute."""
    invocations, errors = traffic
    error_rate_alarm(cloud, "error-rate", "blue", treatment)
    for metric, values in (("Invocations", invocations), ("Errors", errors)):
        # Several datapoints within the newest minute: the Sum adds them up.
        for value in values:
            cloud.put_values([value], metric=metric, dimensions={"VariantName": "blue"})
    cloud.put_values([1000.0], metric="Errors", dimensions={"VariantName": "green"})  # another variant

    cloud.evaluator.evaluate()

    alarm = cloud.alarm("error-rate")
    assert alarm["StateValue"] == expected
    if rate is not None:
        reason_data = json.loads(alarm["StateReasonData"])
        assert reason_data["recentDatapoints"] == [rate]
        assert "statistic" not in reason_data


def test_an_unsupported_math_function_is_refused_naming_the_alarm_and_the_function(cloud: Cloud) -> None:
    cloud.put_alarm(
        "absolute",
        Metrics=[
            {"Id": "e1", "Expression": "ABS(m1)", "ReturnData": True},
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": METRIC},
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
        ],
    )
    with pytest.raises(AlarmConfigurationError, match=r"alarm absolute: .*function ABS is not supported"):
        cloud.evaluator.evaluate()


def test_extended_statistic_p99_over_the_raw_values(cloud: Cloud) -> None:
    stamp = datetime.fromtimestamp(cloud.clock.minute - 30, UTC)
    for first in range(1, 101, 20):
        cloud.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {"MetricName": METRIC, "Value": float(v), "Timestamp": stamp}
                for v in range(first, first + 20)
            ],
        )
    cloud.put_alarm("p99-above", ExtendedStatistic="p99", Threshold=98.5)
    cloud.put_alarm("p99-at", ExtendedStatistic="p99", Threshold=99.0)
    cloud.put_alarm("p50-above", ExtendedStatistic="p50", Threshold=49.5)
    # p99 wants 1000 samples per period before it counts, when told to ignore fewer.
    cloud.put_alarm(
        "p99-low-samples", ExtendedStatistic="p99", Threshold=98.5, EvaluateLowSampleCountPercentile="ignore"
    )

    cloud.evaluator.evaluate()

    states = {name: cloud.state(name) for name in ("p99-above", "p99-at", "p50-above", "p99-low-samples")}
    assert states == {
        "p99-above": "ALARM",
        "p99-at": "OK",
        "p50-above": "ALARM",
        "p99-low-samples": "INSUFFICIENT_DATA",
    }
    reason_data = json.loads(cloud.alarm("p99-above")["StateReasonData"])
    assert (reason_data["extendedStatistic"], reason_data["recentDatapoints"]) == ("p99", [99.0])


# --- composite alarms -------------------------------------------------------------------------------


def test_composite_rules_with_nesting_over_every_state(cloud: Cloud) -> None:
    cloud.put_values([10.0], metric="Breaching")
    cloud.put_values([1.0], metric="Fine")
    cloud.put_alarm("in-alarm", MetricName="Breaching")
    cloud.put_alarm("in-ok", MetricName="Fine")
    cloud.put_alarm("no-data", MetricName="Silent")
    arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:"
    rules = {
        "all-as-they-are": f'ALARM("in-alarm") AND OK({arn}in-ok) AND INSUFFICIENT_DATA("no-data")',
        "not-grouped": 'ALARM("in-alarm") AND NOT (OK("in-ok") OR INSUFFICIENT_DATA("no-data"))',
        "nested-or": '(ALARM("in-ok") OR (ALARM("no-data") OR ALARM("in-alarm"))) AND NOT ALARM("in-ok")',
        "always": "TRUE",
        "never": "FALSE",
        "not-true": "NOT TRUE",
    }
    for name, rule in rules.items():
        cloud.cloudwatch.put_composite_alarm(AlarmName=name, AlarmRule=rule)
    # A composite of composites, created first in the backend's order but evaluated after its children.
    cloud.cloudwatch.put_composite_alarm(
        AlarmName="parent", AlarmRule=f'ALARM("{arn}nested-or") AND OK(never)'
    )
    assert cloud.state("parent") == "INSUFFICIENT_DATA"  # as PutCompositeAlarm leaves a new alarm

    transitions = cloud.evaluator.evaluate()

    expected = {
        "all-as-they-are": "ALARM",
        "not-grouped": "OK",
        "nested-or": "ALARM",
        "always": "ALARM",
        "never": "OK",
        "not-true": "OK",
        "parent": "ALARM",
    }
    assert {name: cloud.state(name) for name in expected} == expected
    composite_order = [t.alarm_name for t in transitions if t.alarm_type == "CompositeAlarm"]
    assert composite_order.index("parent") > composite_order.index("nested-or")
    reason_data = json.loads(
        cloud.cloudwatch.describe_alarms(AlarmNames=["nested-or"])["CompositeAlarms"][0]["StateReasonData"]
    )
    assert reason_data["triggeringAlarms"][0]["arn"].startswith(arn)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ('ALARM("in-alarm") OR', "ends where a condition was expected"),
        ('ALARM("in-alarm") or OK("in-alarm")', "unexpected 'or'"),
        ('ALARM("nowhere")', "Could not find alarm nowhere"),
        ("(TRUE", "expected ')'"),
    ],
)
def test_a_bad_composite_rule_is_refused_by_put_composite_alarm(
    cloud: Cloud, rule: str, problem: str
) -> None:
    cloud.put_alarm("in-alarm")
    with pytest.raises(ClientError, match=re.escape(problem)) as refused:
        cloud.cloudwatch.put_composite_alarm(AlarmName="bad", AlarmRule=rule)
    assert refused.value.response["Error"]["Code"] == "ValidationError"


# --- transitions: once, stored, sent ----------------------------------------------------------------


def test_a_transition_is_emitted_once_and_the_event_reaches_an_eventbridge_rule_with_an_sqs_target(
    cloud: Cloud,
) -> None:
    queue_url = queue_for_state_changes(
        cloud,
        {
            "source": [EVENT_SOURCE],
            "detail-type": [EVENT_DETAIL_TYPE],
            "detail": {"state": {"value": ["ALARM"]}},
        },
    )
    cloud.put_alarm("latency", AlarmDescription="too slow", Dimensions=[{"Name": "Host", "Value": "a"}])
    cloud.put_values([10.0], dimensions={"Host": "a"})

    first = cloud.evaluator.evaluate()
    again = cloud.evaluator.evaluate()

    assert [(t.alarm_name, t.previous_state, t.state) for t in first] == [
        ("latency", "INSUFFICIENT_DATA", "ALARM")
    ]
    assert again == []
    (event,) = cloud.received(queue_url)
    assert (event["source"], event["detail-type"], event["resources"]) == (
        EVENT_SOURCE,
        EVENT_DETAIL_TYPE,
        [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:latency"],
    )
    assert event["region"] == REGION  # moto's SQS delivery leaves out the event's "account"
    detail = event["detail"]
    assert detail["alarmName"] == "latency"
    assert detail["state"]["value"] == "ALARM"
    assert detail["state"]["reason"] == first[0].reason
    assert json.loads(detail["state"]["reasonData"])["recentDatapoints"] == [10.0]
    assert detail["state"]["timestamp"] == _iso(cloud.clock.now)
    assert detail["previousState"]["value"] == "INSUFFICIENT_DATA"
    assert detail["configuration"]["description"] == "too slow"
    (metric,) = detail["configuration"]["metrics"]
    assert metric["metricStat"] == {
        "metric": {"dimensions": {"Host": "a"}, "name": METRIC, "namespace": NAMESPACE},
        "period": 60,
        "stat": "Maximum",
    }
    assert metric["returnData"] is True

    # Back to OK: a transition, but the rule only matches ALARM.
    cloud.clock.now += 60
    cloud.put_values([1.0], dimensions={"Host": "a"})
    assert [t.state for t in cloud.evaluator.evaluate()] == ["OK"]
    assert cloud.received(queue_url) == []


def test_state_history_and_the_alarm_state_show_the_evaluator_clock(cloud: Cloud) -> None:
    cloud.put_alarm("latency")
    cloud.put_values([10.0])
    cloud.evaluator.evaluate()
    cloud.clock.now += 60
    cloud.put_values([1.0])
    cloud.evaluator.evaluate()

    alarm = cloud.alarm("latency")
    assert alarm["StateUpdatedTimestamp"] == datetime.fromtimestamp(cloud.clock.now, UTC)
    history = cloud.cloudwatch.describe_alarm_history(AlarmName="latency", HistoryItemType="StateUpdate")
    summaries = [item["HistorySummary"] for item in history["AlarmHistoryItems"]]
    assert summaries == ["Alarm updated from ALARM to OK", "Alarm updated from INSUFFICIENT_DATA to ALARM"]
    newest = json.loads(history["AlarmHistoryItems"][0]["HistoryData"])
    assert newest["newState"]["stateValue"] == "OK"
    assert newest["oldState"]["stateReasonData"]["recentDatapoints"] == [10.0]


def test_alarm_actions_publish_cloudwatch_notifications_to_sns(cloud: Cloud) -> None:
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    queue_url = cloud.sqs.create_queue(QueueName="notifications")["QueueUrl"]
    queue_arn = cloud.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    cloud.put_alarm("latency", AlarmActions=[topic], OKActions=[topic])
    cloud.put_alarm("quiet", AlarmActions=[topic], ActionsEnabled=False)
    cloud.put_alarm("missing-topic", AlarmActions=[f"arn:aws:sns:{REGION}:{ACCOUNT}:nowhere"])
    cloud.put_values([10.0])

    cloud.evaluator.evaluate()

    (notification,) = cloud.received(queue_url)
    assert (notification["AlarmName"], notification["OldStateValue"], notification["NewStateValue"]) == (
        "latency",
        "INSUFFICIENT_DATA",
        "ALARM",
    )
    assert notification["Trigger"]["MetricName"] == METRIC
    assert cloud.state("missing-topic") == "ALARM"


def test_running_evaluates_in_the_background_until_closed(cloud: Cloud) -> None:
    cloud.put_alarm("latency")
    with cloud.evaluator.running(interval_seconds=0.01):
        cloud.put_values([10.0])
        deadline = time.monotonic() + 10
        while cloud.state("latency") != "ALARM":
            assert time.monotonic() < deadline, "the background evaluation did not reach ALARM within 10 s"
            time.sleep(0.01)
    assert [t.state for t in cloud.evaluator.transitions] == ["ALARM"]


def test_a_bad_alarm_stops_running_at_once_or_when_the_block_ends(cloud: Cloud) -> None:
    cloud.put_alarm("odd", Statistic="tm99")
    with (
        pytest.raises(AlarmConfigurationError, match="alarm odd: statistic 'tm99' is not supported"),
        cloud.evaluator.running(interval_seconds=0.01),
    ):
        pytest.fail("running() evaluates once before the block starts")
    cloud.cloudwatch.delete_alarms(AlarmNames=["odd"])

    with (
        pytest.raises(AlarmEvaluationStopped, match="alarm later: statistic 'tm99'"),
        cloud.evaluator.running(interval_seconds=0.01) as background,
    ):
        cloud.put_alarm("later", Statistic="tm99")
        deadline = time.monotonic() + 10
        while not background.failed:
            assert time.monotonic() < deadline, "the background evaluation did not fail within 10 s"
            time.sleep(0.01)


def test_alarms_and_data_arriving_through_moto_server_are_evaluated_in_process(cloud: Cloud) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        remote = boto3.client("cloudwatch", region_name=REGION, endpoint_url=f"http://{host}:{port}")
        remote.put_metric_alarm(
            AlarmName="remote",
            Namespace=NAMESPACE,
            MetricName=METRIC,
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
        )
        stamp = datetime.fromtimestamp(cloud.clock.minute - 30, UTC)
        remote.put_metric_data(
            Namespace=NAMESPACE, MetricData=[{"MetricName": METRIC, "Value": 2.0, "Timestamp": stamp}]
        )

        cloud.evaluator.evaluate()

        assert remote.describe_alarms(AlarmNames=["remote"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    finally:
        server.stop()


# --- the dev stack's alarms -------------------------------------------------------------------------

STACK = "MlRollout-dev"


TOPIC_STAND_IN = "arn:aws:sns:us-east-1:123456789012:mlrollout-dev-notifications"


@pytest.fixture(scope="module")
def dev_template(tmp_path_factory: pytest.TempPathFactory) -> StackTemplate:
    outdir: Path = shared_outdir(tmp_path_factory)
    return app_template(load_stacks(outdir), STACK)


def test_the_dev_stack_alarms_catch_a_failing_challenger_and_leave_the_champion_healthy(
    cloud: Cloud, dev_template: StackTemplate
) -> None:
    # The family stack's alarms name the topic the platform stack hands over in SSM.
    handed_over = {name: TOPIC_STAND_IN for name in dev_template.parameters if "platformtopicarn" in name}
    created = put_template_alarms(
        cloud.cloudwatch, dev_template, local_resolver(dev_template, parameters=handed_over)
    )
    endpoint = "mlrollout-dev-churn"
    assert f"{endpoint}-challenger-5xx" in created.metric_alarms.values()
    assert set(created.composite_alarms.values()) == {
        f"{endpoint}-unhealthy",
        f"{endpoint}-champion-unhealthy",
    }
    queue_url = queue_for_state_changes(
        cloud, {"source": [EVENT_SOURCE], "detail": {"state": {"value": ["ALARM"]}}}
    )

    def sagemaker(variant: str, metric: str, values: list[float]) -> None:
        dimensions = {"EndpointName": endpoint, "VariantName": variant}
        cloud.put_values(values, metric=metric, dimensions=dimensions, namespace="AWS/SageMaker")

    # Five minutes of traffic: the challenger fails 10 % of its requests, the champion none.
    sagemaker("champion", "Invocations", [400.0] * 5)
    sagemaker("champion", "Invocation5XXErrors", [0.0] * 5)
    sagemaker("champion", "ModelLatency", [20_000.0] * 5)
    sagemaker("challenger", "Invocations", [100.0] * 5)
    sagemaker("challenger", "Invocation5XXErrors", [10.0] * 5)
    sagemaker("challenger", "ModelLatency", [25_000.0] * 5)

    cloud.evaluator.evaluate()

    states = {
        name: cloud.state(name)
        for name in [*created.metric_alarms.values(), *created.composite_alarms.values()]
    }
    in_alarm = {name for name, state in states.items() if state == "ALARM"}
    assert in_alarm == {f"{endpoint}-challenger-5xx", f"{endpoint}-unhealthy"}
    assert states[f"{endpoint}-champion-unhealthy"] == "OK"
    assert set(states.values()) == {"ALARM", "OK"}  # notBreaching: no data (4XX, business) is OK
    reason = cloud.alarm(f"{endpoint}-challenger-5xx")["StateReason"]
    assert reason.startswith("Threshold Crossed: 5 out of the last 5 datapoints [10.0 (")
    assert {event["detail"]["alarmName"] for event in cloud.received(queue_url)} == in_alarm


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
