"""Per-variant CloudWatch alarms of one endpoint and the composite alarm that summarises them.

Dimensions come from the config (endpoint and variant names), never from the endpoint resource:
the endpoint lists these alarms in its AutoRollbackConfiguration, so a reference back would be a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import Alarms, BusinessMetric, Endpoint

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
MICROSECONDS_PER_MS = 1000  # ModelLatency is published in microseconds
AlarmKind = Literal["5xx", "4xx", "latency-p99", "business"]
ErrorClass = Literal["5XX", "4XX"]


def endpoint_physical_name(prefix: str, endpoint: Endpoint) -> str:
    """The SageMaker endpoint's name, equal to `EnvironmentConfig.endpoint_name` (a test checks the match)."""
    return f"{prefix}-{endpoint.name}"


def alarm_name(prefix: str, endpoint: Endpoint, variant: str, kind: AlarmKind) -> str:
    return f"{prefix}-{endpoint.name}-{variant}-{kind}"


def composite_alarm_name(prefix: str, endpoint: Endpoint) -> str:
    return f"{prefix}-{endpoint.name}-unhealthy"


def champion_composite_alarm_name(prefix: str, endpoint: Endpoint) -> str:
    return f"{prefix}-{endpoint.name}-champion-unhealthy"


def monitored_variants(endpoint: Endpoint) -> list[str]:
    """Champion first, then the challenger slot: the shadow variant when the endpoint runs one."""
    challenger = endpoint.variants.shadow if endpoint.shadow else endpoint.variants.challenger
    return [endpoint.variants.champion, challenger]


def error_rate_expression(error_id: str, minimum_invocations: int) -> str:
    """Errors as a percentage of invocations; 0 below the volume floor, so 1 error in 2 requests is quiet.

    The floor is at least 1 so that a minute without traffic never divides by zero.
    """
    floor = max(minimum_invocations, 1)
    return f"IF(invocations >= {floor}, 100 * FILL({error_id}, 0) / invocations, 0)"


@dataclass(frozen=True)
class VariantMetrics:
    """The metrics of one production (or shadow) variant, shared by the alarms and the dashboard."""

    endpoint_name: str
    variant_name: str
    period: Duration
    minimum_invocations: int
    business_metric: BusinessMetric

    @property
    def dimensions(self) -> dict[str, str]:
        return {"EndpointName": self.endpoint_name, "VariantName": self.variant_name}

    def sagemaker(self, metric_name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=SAGEMAKER_NAMESPACE,
            metric_name=metric_name,
            dimensions_map=self.dimensions,
            statistic=statistic,
            period=self.period,
        )

    def invocations(self) -> cloudwatch.Metric:
        return self.sagemaker("Invocations", "Sum")

    def error_rate(self, error_class: ErrorClass) -> cloudwatch.MathExpression:
        # Distinct ids per class let both rates share one dashboard graph.
        error_id = f"errors{error_class.lower()}"
        return cloudwatch.MathExpression(
            expression=error_rate_expression(error_id, self.minimum_invocations),
            using_metrics={
                error_id: self.sagemaker(f"Invocation{error_class}Errors", "Sum"),
                "invocations": self.invocations(),
            },
            label=f"{error_class} rate (%) {self.variant_name}",
            period=self.period,
        )

    def latency(self, percentile: str) -> cloudwatch.Metric:
        """ModelLatency in microseconds, as SageMaker publishes it (e.g. percentile "p99")."""
        return self.sagemaker("ModelLatency", percentile)

    def latency_ms(self, percentile: str) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=f"{percentile} / {MICROSECONDS_PER_MS}",
            using_metrics={percentile: self.latency(percentile)},
            label=f"ModelLatency {percentile} (ms) {self.variant_name}",
            period=self.period,
        )

    def business(self) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self.business_metric.namespace,
            metric_name=self.business_metric.name,
            dimensions_map=self.dimensions,
            statistic=self.business_metric.statistic,
            period=self.period,
        )


class EndpointAlarms(Construct):
    """5XX and 4XX rates, p99 model latency and the business metric per variant; one composite alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        endpoint: Endpoint,
        thresholds: Alarms,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = prefix
        self._endpoint = endpoint
        self.thresholds = thresholds
        self.endpoint_name = endpoint_physical_name(prefix, endpoint)
        self.variant_names = monitored_variants(endpoint)
        self.metrics = {
            variant: VariantMetrics(
                endpoint_name=self.endpoint_name,
                variant_name=variant,
                period=Duration.seconds(thresholds.period_seconds),
                minimum_invocations=thresholds.minimum_invocations,
                business_metric=endpoint.business_metric,
            )
            for variant in self.variant_names
        }
        self.alarms: list[cloudwatch.Alarm] = []
        self.alarms_by_variant: dict[str, list[cloudwatch.Alarm]] = {
            variant: [] for variant in self.variant_names
        }
        self.alarm_names: list[str] = []
        for variant in self.variant_names:
            self._add_variant_alarms(self.metrics[variant])

        self.composite_alarm = cloudwatch.CompositeAlarm(
            self,
            "Unhealthy",
            composite_alarm_name=composite_alarm_name(prefix, endpoint),
            alarm_description=f"Any alarm of endpoint {self.endpoint_name} is in ALARM.",
            alarm_rule=cloudwatch.AlarmRule.any_of(
                *(
                    cloudwatch.AlarmRule.from_alarm(alarm, cloudwatch.AlarmState.ALARM)
                    for alarm in self.alarms
                )
            ),
        )
        # The safe path's health. Flag deployments roll back on this one, not on the endpoint-wide
        # composite: the kill switch is pulled *while* a challenger is unhealthy, and must stick then.
        self.champion_composite_alarm = cloudwatch.CompositeAlarm(
            self,
            "ChampionUnhealthy",
            composite_alarm_name=champion_composite_alarm_name(prefix, endpoint),
            alarm_description=f"Any alarm of the champion variant of {self.endpoint_name} is in ALARM.",
            alarm_rule=cloudwatch.AlarmRule.any_of(
                *(
                    cloudwatch.AlarmRule.from_alarm(alarm, cloudwatch.AlarmState.ALARM)
                    for alarm in self.alarms_by_variant[endpoint.variants.champion]
                )
            ),
        )
        self._notify(self.composite_alarm, topic)
        for alarm in self.alarms:
            self._notify(alarm, topic)

    def _add_variant_alarms(self, metrics: VariantMetrics) -> None:
        limits = self.thresholds
        above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        below = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
        business = self._endpoint.business_metric
        self._add_alarm(
            metrics,
            "5xx",
            metric=metrics.error_rate("5XX"),
            threshold=limits.error_5xx_rate_percent,
            comparison=above,
            what="5XX rate in % of invocations",
        )
        self._add_alarm(
            metrics,
            "4xx",
            metric=metrics.error_rate("4XX"),
            threshold=limits.error_4xx_rate_percent,
            comparison=above,
            what="4XX rate in % of invocations",
        )
        self._add_alarm(
            metrics,
            "latency-p99",
            metric=metrics.latency("p99"),
            threshold=limits.model_latency_p99_ms * MICROSECONDS_PER_MS,
            comparison=above,
            what=f"ModelLatency p99 in microseconds ({limits.model_latency_p99_ms} ms)",
        )
        self._add_alarm(
            metrics,
            "business",
            metric=metrics.business(),
            threshold=business.threshold,
            comparison=below if business.alarm_when == "below" else above,
            what=f"{business.namespace}/{business.name} ({business.statistic}) {business.alarm_when}",
        )

    def _add_alarm(
        self,
        metrics: VariantMetrics,
        kind: AlarmKind,
        *,
        metric: cloudwatch.IMetric,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        what: str,
    ) -> None:
        name = alarm_name(self._prefix, self._endpoint, metrics.variant_name, kind)
        alarm = cloudwatch.Alarm(
            self,
            f"{metrics.variant_name}-{kind}",
            alarm_name=name,
            alarm_description=(
                f"{self.endpoint_name} variant {metrics.variant_name}: {what}, threshold {threshold}. "
                "No data (no traffic) is not a breach."
            ),
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=self.thresholds.evaluation_periods,
            datapoints_to_alarm=self.thresholds.datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms.append(alarm)
        self.alarms_by_variant[metrics.variant_name].append(alarm)
        self.alarm_names.append(name)

    @staticmethod
    def _notify(alarm: cloudwatch.AlarmBase, topic: sns.ITopic) -> None:
        action = actions.SnsAction(topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
