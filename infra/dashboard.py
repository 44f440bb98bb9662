"""One CloudWatch dashboard per endpoint: alarm status on top, then a row of graphs per variant."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.alarms import EndpointAlarms, VariantMetrics
from infra.config import Endpoint

GRAPH_WIDTH = 6  # four graphs fill the dashboard's 24 columns
GRAPH_HEIGHT = 6
LATENCY_PERCENTILES = ("p50", "p90", "p99")


class EndpointDashboard(Construct):
    """What a data scientist watches during a rollout: traffic, errors, latency and outcomes per variant."""

    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, endpoint: Endpoint, alarms: EndpointAlarms
    ) -> None:
        super().__init__(scope, construct_id)
        self._alarms = alarms
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{prefix}-{endpoint.name}",
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# {alarms.endpoint_name}\nVariants: {', '.join(alarms.variant_names)}",
                width=8,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                alarms=[alarms.composite_alarm, *alarms.alarms],
                width=16,
                height=GRAPH_HEIGHT,
            ),
        )
        for variant in alarms.variant_names:
            self.dashboard.add_widgets(*self._variant_row(alarms.metrics[variant]))

    def _variant_row(self, metrics: VariantMetrics) -> list[cloudwatch.IWidget]:
        variant = metrics.variant_name
        thresholds = self._alarms.thresholds
        business = metrics.business_metric
        return [
            _graph(f"{variant}: invocations", [metrics.invocations()]),
            _graph(
                f"{variant}: error rate (%)",
                [metrics.error_rate("5XX"), metrics.error_rate("4XX")],
                {
                    "5XX alarm": thresholds.error_5xx_rate_percent,
                    "4XX alarm": thresholds.error_4xx_rate_percent,
                },
            ),
            _graph(
                f"{variant}: model latency (ms)",
                [metrics.latency_ms(percentile) for percentile in LATENCY_PERCENTILES],
                {"p99 alarm": thresholds.model_latency_p99_ms},
            ),
            _graph(f"{variant}: {business.name}", [metrics.business()], {"alarm": business.threshold}),
        ]


def _graph(
    title: str, metrics: list[cloudwatch.IMetric], thresholds: dict[str, float] | None = None
) -> cloudwatch.GraphWidget:
    """A time-series graph with a horizontal line at each alarm threshold (label -> value)."""
    return cloudwatch.GraphWidget(
        title=title,
        left=metrics,
        left_annotations=[
            cloudwatch.HorizontalAnnotation(value=value, label=label)
            for label, value in (thresholds or {}).items()
        ],
        width=GRAPH_WIDTH,
        height=GRAPH_HEIGHT,
    )
