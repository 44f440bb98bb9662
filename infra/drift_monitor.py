"""The drift monitor: a scheduled function measuring the champions' input drift, and an alarm per endpoint.

Every ``schedule`` the function (``lambdas/handlers/drift_monitor.py``) compares each endpoint's newest
captured requests with the training baseline beside its champion's artifact and publishes the largest
per-feature PSI as ``mlrollout/drift`` ``InputDriftPsiMax`` (dimension EndpointName). The alarm of an
endpoint goes to ALARM when that PSI exceeds ``psi_threshold``: the drift alarm that starts a retraining.

The alarm's period is the schedule's interval (one datapoint per period), so the schedule must be a
``rate(...)``: a cron expression runs at irregular intervals that no single period fits.

Missing data is *not breaching*: the function publishes nothing when it cannot judge (no baseline, no
capture, too few requests), and "could not judge" is no evidence of drift, so it must never start a
retraining; the log says why it could not. It is not "missing" either: the alarm would then sit in
INSUFFICIENT_DATA through every quiet night and come back to ALARM from there, which reads in the console
as if it had never been checked. A gap takes an alarm in ALARM back to OK; the next drifted datapoint
makes it ALARM again, and the retraining's lock turns a trigger during a running retraining into a no-op.

Names come from the config (``<prefix>-<endpoint>`` is the SageMaker endpoint), never from the endpoint
resources, so the alarms do not depend on what they watch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.alarms import endpoint_physical_name
from infra.config import Endpoint
from infra.endpoint_settings import grant_read_endpoint_settings, settings_path_environment
from infra.lambda_function import ProjectFunction
from infra.nag import acknowledge_wildcard_resources
from infra.registry import ModelRegistry
from lambdas.gates import GateSettings
from lambdas.gates.aws.inputs import BASELINE_FILE, GATES_FOLDER, gates_folder_of_artifact
from lambdas.retraining.drift import DRIFT_NAMESPACE, ENDPOINT_DIMENSION, PSI_MAX_METRIC

HANDLER = "lambdas.handlers.drift_monitor.handler"
RATE_PATTERN = re.compile(r"^rate\((?P<value>[1-9]\d*) (?P<unit>minute|minutes|hour|hours|day|days)\)$")
SECONDS_PER_UNIT = {"minute": 60, "hour": 3600, "day": 86400}
# PutMetricAlarm: Period x EvaluationPeriods at most seven days.
ALARM_WINDOW_MAX_SECONDS = 7 * 86400
# Reading up to 20 capture files and a baseline per endpoint, and the KS statistics, take seconds.
TIMEOUT = Duration.minutes(5)
MEMORY_MB = 512


def drift_alarm_name(prefix: str, endpoint: Endpoint) -> str:
    return f"{prefix}-{endpoint.name}-input-drift"


def schedule_interval(schedule: str) -> Duration:
    """The interval of an EventBridge ``rate(N unit)`` expression; anything else is refused, saying why."""
    match = RATE_PATTERN.match(schedule)
    if match is None:
        raise ValueError(
            f"the drift monitor's schedule must be rate(N minutes|hours|days), got {schedule!r}: the "
            "alarm's period is the interval between runs, which a cron() expression does not have"
        )
    value, unit = int(match["value"]), match["unit"].rstrip("s")
    if (value == 1) == match["unit"].endswith("s"):
        raise ValueError(f"EventBridge writes rate(1 {unit}) and rate(N {unit}s), got {schedule!r}")
    return Duration.seconds(value * SECONDS_PER_UNIT[unit])


class DriftMonitor(Construct):
    """The scheduled drift function, its rule, and one InputDriftPsiMax alarm per endpoint.

    ``alarms`` is keyed by the config's endpoint name (``churn``); ``alarm_for`` also takes the
    SageMaker endpoint name (``mlrollout-dev-churn``). ``gates`` supplies PSI bins, smoothing and the
    minimum sample (the rollout gate's, so both judge drift alike); its ``psi_max`` is replaced by
    ``psi_threshold``, so the features the function logs as drifted are those that trip the alarm.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        endpoints: Sequence[Endpoint],
        registry: ModelRegistry,
        schedule: str,
        psi_threshold: float,
        gates: GateSettings | None = None,
        evaluation_periods: int = 1,
        topic: sns.ITopic | None = None,
        alarm_places: Mapping[str, tuple[Construct, sns.ITopic]] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        _check_endpoints(endpoints)
        if not (math.isfinite(psi_threshold) and psi_threshold > 0):
            raise ValueError(f"psi_threshold must be a positive number, got {psi_threshold}")
        self.interval = schedule_interval(schedule)
        if (
            evaluation_periods < 1
            or self.interval.to_seconds() * evaluation_periods > ALARM_WINDOW_MAX_SECONDS
        ):
            raise ValueError(
                f"evaluation_periods {evaluation_periods} of {schedule} must be at least 1 and span at most "
                "7 days (CloudWatch's longest alarm window)"
            )
        self._prefix = prefix
        self._endpoints = list(endpoints)
        self._registry = registry
        self.psi_threshold = psi_threshold
        self.gate_settings = GateSettings.model_validate(
            {**(gates or GateSettings()).model_dump(), "psi_max": psi_threshold}
        )
        self.endpoint_names = {e.name: endpoint_physical_name(prefix, e) for e in self._endpoints}

        self.function = ProjectFunction(
            self,
            "Function",
            handler=HANDLER,
            description=f"{prefix}: drift monitor of the champions' captured inputs",
            environment=self._environment(),
            timeout=TIMEOUT,
            log_key=registry.key,
            memory_size=MEMORY_MB,
        )
        self._grant()
        grant_read_endpoint_settings(self.function.role, prefix)
        self.rule = events.Rule(
            self,
            "Schedule",
            description=f"{prefix}: measure the champions' input drift, {schedule}",
            schedule=events.Schedule.expression(schedule),
        )
        # No dead-letter queue: a run that is never delivered is replaced by the next one, one interval on.
        self.rule.add_target(
            targets.LambdaFunction(
                self.function.function,
                retry_attempts=3,
                max_event_age=Duration.seconds(min(max(self.interval.to_seconds(), 60), 86400)),
            )
        )
        # Each alarm where its endpoint lives (its family's stack), with that stack's view of the topic.
        places = alarm_places or {}
        self.alarms: dict[str, cloudwatch.Alarm] = {
            endpoint.name: self._alarm(
                endpoint, evaluation_periods, *places.get(endpoint.name, (self, topic))
            )
            for endpoint in self._endpoints
        }
        self.alarm_names = {endpoint.name: drift_alarm_name(prefix, endpoint) for endpoint in self._endpoints}

    def alarm_for(self, endpoint_name: str) -> cloudwatch.IAlarm:
        """The drift alarm of an endpoint, by its config name or its SageMaker endpoint name."""
        if endpoint_name in self.alarms:
            return self.alarms[endpoint_name]
        for name, physical in self.endpoint_names.items():
            if physical == endpoint_name:
                return self.alarms[name]
        raise KeyError(
            f"no drift alarm for endpoint {endpoint_name!r}: the monitored endpoints are "
            f"{sorted(self.endpoint_names.items())}"
        )

    # --- the function ------------------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        return {
            **settings_path_environment(self._prefix),
            "DRIFT_GATES": self.gate_settings.model_dump_json(),
            "POWERTOOLS_SERVICE_NAME": "drift-monitor",
        }

    def _allow(
        self, actions: Sequence[str], resources: Sequence[str], conditions: Mapping[str, object] | None = None
    ) -> None:
        self.function.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(actions), resources=list(resources), conditions=conditions)
        )

    def _grant(self) -> None:
        """Exactly the calls of lambdas/handlers/drift_monitor.py, on this environment's names."""
        stack = Stack.of(self)
        role = self.function.role

        def sagemaker(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        # The environment's names as patterns (infra/rollout_targets.py): one policy size for any count.
        names = f"{self._prefix}-*"
        configs = [sagemaker("endpoint-config", names)]
        models = [sagemaker("model", names)]
        packages = [sagemaker("model-package", f"{names}/*")]
        endpoints = [sagemaker("endpoint", names)]
        self._allow(["sagemaker:DescribeEndpoint"], endpoints)
        acknowledge_wildcard_resources(
            role,
            endpoints,
            "The environment's endpoints, each in its family's stack, named <prefix>-...: the monitor reads "
            "every endpoint's running config, one policy however many endpoints.",
        )
        self._allow(["sagemaker:DescribeEndpointConfig"], configs)
        self._allow(["sagemaker:DescribeModel"], models)
        self._allow(["sagemaker:DescribeModelPackage"], packages)
        acknowledge_wildcard_resources(
            role,
            [*configs, *models, *packages],
            "Endpoint configs and models are named after their endpoint with a run-time suffix, package "
            "versions are numbered at registration: only this environment's names are readable.",
        )

        bucket = self._registry.bucket
        any_baseline = f"*/{GATES_FOLDER}/{BASELINE_FILE}"
        capture_prefixes = ["data-capture/"]
        captures = [bucket.arn_for_objects(f"{prefix}*") for prefix in capture_prefixes]
        bootstrap = _bootstrap_baselines(self._endpoints)
        self._allow(
            ["s3:GetObject"],
            [
                bucket.arn_for_objects(any_baseline),
                *captures,
                *(
                    f"arn:{stack.partition}:s3:::{name}/{key}"
                    for name, keys in bootstrap.items()
                    for key in keys
                ),
            ],
        )
        # Listing: the capture folders, and whether a baseline exists (S3 reports a missing key as
        # AccessDenied to a caller that may not list it); no other key of any bucket is listed.
        self._allow(
            ["s3:ListBucket"],
            [bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [*(f"{p}*" for p in capture_prefixes), any_baseline]}},
        )
        for name, keys in bootstrap.items():
            self._allow(
                ["s3:ListBucket"],
                [f"arn:{stack.partition}:s3:::{name}"],
                conditions={"StringEquals": {"s3:prefix": keys}},
            )
        self._registry.key.grant(role, "kms:Decrypt")
        acknowledge_wildcard_resources(
            role,
            [bucket.arn_for_objects(any_baseline), *captures],
            "Only training baselines (<artifact dir>/gates/baseline.json, wherever a version's artifact "
            "is) and the monitored endpoints' captured requests, whose keys are only known at run time.",
        )

        self._allow(
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": DRIFT_NAMESPACE}},
        )
        acknowledge_wildcard_resources(
            role,
            ["*"],
            "xray:PutTraceSegments, xray:PutTelemetryRecords and cloudwatch:PutMetricData support no "
            f"resource-level permission; PutMetricData is limited to the {DRIFT_NAMESPACE} namespace.",
        )

    # --- the alarms --------------------------------------------------------------------------------------

    def _alarm(
        self, endpoint: Endpoint, evaluation_periods: int, scope: Construct, topic: sns.ITopic | None
    ) -> cloudwatch.Alarm:
        physical = self.endpoint_names[endpoint.name]
        alarm = cloudwatch.Alarm(
            scope,
            f"Drift-{endpoint.name}",
            alarm_name=drift_alarm_name(self._prefix, endpoint),
            alarm_description=(
                f"{physical}: the largest per-feature PSI of the champion's captured inputs against its "
                f"training baseline exceeds {self.psi_threshold:g}; ALARM starts a retraining of "
                f"{endpoint.model_family}. No datapoint (no baseline, no capture, too few requests: the "
                "drift monitor's log says which) is not a breach."
            ),
            metric=cloudwatch.Metric(
                namespace=DRIFT_NAMESPACE,
                metric_name=PSI_MAX_METRIC,
                dimensions_map={ENDPOINT_DIMENSION: physical},
                statistic="Maximum",
                period=self.interval,
            ),
            threshold=self.psi_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if topic is not None:
            action = actions.SnsAction(topic)
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        return alarm


def _check_endpoints(endpoints: Sequence[Endpoint]) -> None:
    if not endpoints:
        raise ValueError("the drift monitor needs at least one endpoint")
    blind = [endpoint.name for endpoint in endpoints if not endpoint.data_capture.enabled]
    if blind:
        raise ValueError(
            f"endpoints {blind} capture no requests, so their input drift cannot be measured: enable "
            "their data_capture or leave them out of the drift monitor"
        )


def _bootstrap_baselines(endpoints: Sequence[Endpoint]) -> dict[str, list[str]]:
    """Bucket -> the baseline keys beside the bootstrap models' artifacts (maybe outside the registry)."""
    keys: dict[str, set[str]] = {}
    for endpoint in endpoints:
        bucket, prefix = gates_folder_of_artifact(
            endpoint.initial_model.model_data_url, f"endpoint {endpoint.name}'s initial model"
        )
        keys.setdefault(bucket, set()).add(prefix + BASELINE_FILE)
    return {bucket: sorted(found) for bucket, found in sorted(keys.items())}
