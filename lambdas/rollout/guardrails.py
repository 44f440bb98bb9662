"""Guardrails beyond the model: the rest of the system's health, and what the challenger costs.

* **System health**: CloudWatch alarms the stack does not own (a database's CPU, a downstream API's
  5XX, a queue's age), by name or ARN. Any of them in ALARM refuses a rollout's start; any going to ALARM
  while a rollout runs aborts it through the abort path (``lambdas.rollout.abort``).
* **Cost**: the challenger's cost per 1,000 predictions against the champion's, at the champion's load.
  An instance serves one prediction at a time per worker, so the capacity a model needs grows with its
  model latency: at the same load, a model twice as slow needs twice the instance-hours. The champion
  runs ``instances`` of its type for the endpoint's load; the challenger would need
  ``instances x challenger latency / champion latency`` of its type. Each cost per 1,000 predictions is
  ``hourly price x instances x 1000 / predictions per hour``. Over ``max_cost_increase`` the rollout is
  rolled back with the reason ``cost``.

Capacity is compared as a fraction of instances (what an autoscaled fleet pays for), not rounded up:
rounding a one-instance fleet up would make any slower model cost twice as much. The whole instances
the challenger would need are reported beside it.

Pure domain code: pydantic and the standard library only; the settings are part of the environment's
config (``infra/config.py``) as well as the functions'.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from lambdas.rollout.judge import RolloutWindows, VariantWindow

__all__ = [
    "ALARM_ARN_PATTERN",
    "COST_REASON",
    "DEFAULT_INSTANCE_PRICES",
    "CostBasis",
    "CostComparison",
    "CostFromWindows",
    "GuardrailSettings",
    "alarm_name",
    "compare_cost",
    "cost_over_windows",
    "cost_per_thousand",
]

ALARM_ARN_PATTERN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):cloudwatch:(?P<region>[a-z]{2}(-[a-z]+)+-\d):(?P<account>\d{12}):"
    r"alarm:(?P<name>.+)$"
)
ALARM_NAME_MAX = 255
COST_REASON = "cost"
"""How every reason of a rollback for cost starts."""

# On-demand prices (USD per instance-hour) of SageMaker real-time inference in us-east-1; the config's
# `instance_prices` overrides or extends them (another region, a discount, a newer type).
DEFAULT_INSTANCE_PRICES: Mapping[str, float] = {
    "ml.t2.medium": 0.056,
    "ml.t2.large": 0.111,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.c5.large": 0.102,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.c5.4xlarge": 0.816,
    "ml.r5.large": 0.151,
    "ml.r5.xlarge": 0.302,
    "ml.g4dn.xlarge": 0.736,
    "ml.g5.xlarge": 1.408,
    "ml.inf1.xlarge": 0.297,
}

AlarmReference = Annotated[str, Field(min_length=1, max_length=2048)]


def alarm_name(reference: str) -> str:
    """The alarm's name, given its name or its ARN."""
    matched = ALARM_ARN_PATTERN.match(reference)
    return matched["name"] if matched else reference


class GuardrailSettings(BaseModel):
    """An endpoint's guardrails beyond its own alarms and the judge (config: ``rollout.guardrails``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alarms: tuple[AlarmReference, ...] = Field(
        default=(),
        description="CloudWatch alarms outside the stack, by name or ARN: one in ALARM refuses a start, "
        "one going to ALARM aborts a running rollout",
    )
    max_cost_increase: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="the challenger's cost per 1,000 predictions may exceed the champion's by at most this "
        "fraction (0.2: 20 %); None records the cost without judging it",
    )

    @field_validator("alarms")
    @classmethod
    def _alarm_references(cls, alarms: tuple[str, ...]) -> tuple[str, ...]:
        problems = []
        for reference in alarms:
            if reference.startswith("arn:") and not ALARM_ARN_PATTERN.match(reference):
                problems.append(
                    f"{reference!r} is not a CloudWatch alarm ARN "
                    "(arn:aws:cloudwatch:<region>:<account>:alarm:<name>)"
                )
                continue
            name = alarm_name(reference)
            if len(name) > ALARM_NAME_MAX:
                problems.append(f"alarm name {name[:40]!r}... is longer than {ALARM_NAME_MAX} characters")
            elif name != name.strip() or any(ord(char) < 32 or ord(char) == 127 for char in name):
                problems.append(f"alarm name {name!r} has leading or trailing blanks or control characters")
        names = [alarm_name(reference) for reference in alarms]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            problems.append(f"alarms named more than once: {repeated}")
        if problems:
            raise ValueError("; ".join(problems))
        return alarms

    @property
    def alarm_names(self) -> tuple[str, ...]:
        return tuple(alarm_name(reference) for reference in self.alarms)


class CostBasis(BaseModel):
    """What the champion runs on when the rollout starts (its live endpoint config), and the prices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_type: str = Field(min_length=1, description="the champion's; the challenger's slot copies it")
    champion_instances: int = Field(ge=1, description="the champion's instances as the rollout starts")
    price_per_hour: float | None = Field(default=None, ge=0, description="None: no price for the type")


@dataclass(frozen=True, slots=True)
class CostComparison:
    """Both variants' cost per 1,000 predictions at the champion's load, and the verdict on it."""

    instance_type: str
    price_per_hour: float
    predictions_per_hour: float
    champion_latency_ms: float
    challenger_latency_ms: float
    champion_instances: float
    challenger_instances: float
    champion_cost_per_1000: float
    challenger_cost_per_1000: float
    max_increase: float | None

    @property
    def increase(self) -> float:
        """The challenger's cost over the champion's, as a fraction (0.2: 20 % more)."""
        return self.challenger_cost_per_1000 / self.champion_cost_per_1000 - 1

    @property
    def over_tolerance(self) -> bool:
        return self.max_increase is not None and self.increase > self.max_increase

    @property
    def whole_instances_needed(self) -> int:
        return max(1, math.ceil(self.challenger_instances - 1e-9))

    def reason(self) -> str:
        limit = "" if self.max_increase is None else f", more than the {self.max_increase:.0%} allowed"
        return (
            f"{COST_REASON}: the challenger would cost ${self.challenger_cost_per_1000:.4f} per 1,000 "
            f"predictions against the champion's ${self.champion_cost_per_1000:.4f} "
            f"({self.increase:+.0%}{limit}): model latency {self.challenger_latency_ms:.1f} ms against "
            f"{self.champion_latency_ms:.1f} ms, {self.challenger_instances:.1f} {self.instance_type} "
            f"instead of {self.champion_instances:g} at {self.predictions_per_hour:.0f} predictions an hour"
        )

    def figures(self) -> dict[str, JsonValue]:
        """The ledger's record of the comparison (JSON numbers, rounded for reading)."""
        return {
            "instance_type": self.instance_type,
            "price_per_hour": self.price_per_hour,
            "predictions_per_hour": round(self.predictions_per_hour, 1),
            "champion_latency_ms": round(self.champion_latency_ms, 3),
            "challenger_latency_ms": round(self.challenger_latency_ms, 3),
            "champion_instances": self.champion_instances,
            "challenger_instances": round(self.challenger_instances, 3),
            "challenger_whole_instances": self.whole_instances_needed,
            "champion_cost_per_1000": round(self.champion_cost_per_1000, 6),
            "challenger_cost_per_1000": round(self.challenger_cost_per_1000, 6),
            "increase": round(self.increase, 4),
            "max_increase": self.max_increase,
            "over_tolerance": self.over_tolerance,
        }


def cost_per_thousand(price_per_hour: float, instances: float, predictions_per_hour: float) -> float:
    """What 1,000 predictions cost on `instances` of a type billed `price_per_hour` each."""
    if predictions_per_hour <= 0:
        raise ValueError(f"a cost per prediction needs predictions, got {predictions_per_hour} an hour")
    if price_per_hour < 0 or instances < 0:
        raise ValueError(f"price and instances cannot be negative, got {price_per_hour}, {instances}")
    return price_per_hour * instances * 1000 / predictions_per_hour


def compare_cost(
    *,
    basis: CostBasis,
    predictions_per_hour: float,
    champion_latency: float,
    challenger_latency: float,
    max_increase: float | None,
    latency_unit_ms: float = 1.0,
) -> CostComparison:
    """Both variants at the champion's load (latencies in any one unit; ``latency_unit_ms`` converts them
    for the record)."""
    if basis.price_per_hour is None:
        raise ValueError(
            f"no on-demand price for {basis.instance_type}: add it to the config's instance_prices"
        )
    if champion_latency <= 0 or challenger_latency < 0:
        raise ValueError(
            f"a cost comparison needs a positive champion latency, got {champion_latency} and "
            f"{challenger_latency}"
        )
    challenger_instances = basis.champion_instances * challenger_latency / champion_latency
    return CostComparison(
        instance_type=basis.instance_type,
        price_per_hour=basis.price_per_hour,
        predictions_per_hour=predictions_per_hour,
        champion_latency_ms=champion_latency * latency_unit_ms,
        challenger_latency_ms=challenger_latency * latency_unit_ms,
        champion_instances=basis.champion_instances,
        challenger_instances=challenger_instances,
        champion_cost_per_1000=cost_per_thousand(
            basis.price_per_hour, basis.champion_instances, predictions_per_hour
        ),
        challenger_cost_per_1000=cost_per_thousand(
            basis.price_per_hour, challenger_instances, predictions_per_hour
        ),
        max_increase=max_increase,
    )


def _mean_latency(windows: Sequence[VariantWindow]) -> tuple[float, int]:
    """The latency average over the windows, weighted by their samples, and the samples."""
    samples = sum(w.latency.sample_count for w in windows if w.latency is not None)
    if samples == 0:
        return 0.0, 0
    total = sum(w.latency.average * w.latency.sample_count for w in windows if w.latency is not None)
    return total / samples, samples


@dataclass(frozen=True, slots=True)
class CostFromWindows:
    comparison: CostComparison | None
    """None when there is too little to compare (the note says why)."""
    note: str

    def record(self) -> dict[str, JsonValue]:
        """The verdict entry's ``cost``: the figures, or why there are none yet."""
        if self.comparison is None:
            return {"note": self.note}
        return self.comparison.figures()


def cost_over_windows(
    windows: RolloutWindows,
    *,
    basis: CostBasis,
    max_increase: float | None,
    min_latency_samples: int,
    period_seconds: int = 60,
    latency_unit_ms: float = 1e-3,
) -> CostFromWindows:
    """The comparison over the rollout's windows: the endpoint's load is both variants' requests per hour
    over the windows either served in (the challenger's share included); each variant's latency is its
    average over them. ``latency_unit_ms``: SageMaker's ModelLatency is in microseconds."""
    champion_latency, champion_samples = _mean_latency(windows.champion)
    challenger_latency, challenger_samples = _mean_latency(windows.challenger)
    fewest = min(champion_samples, challenger_samples)
    if fewest < min_latency_samples or champion_latency <= 0:
        return CostFromWindows(
            None,
            f"not compared yet: {champion_samples} champion and {challenger_samples} challenger latency "
            f"samples, {min_latency_samples} each needed",
        )
    if basis.price_per_hour is None:
        return CostFromWindows(
            None,
            f"not compared: no on-demand price for {basis.instance_type} in the config's instance_prices",
        )
    served = [
        champion.requests + challenger.requests
        for champion, challenger in zip(windows.champion, windows.challenger, strict=True)
        if champion.requests + challenger.requests > 0
    ]
    per_hour = sum(served) * 3600 / (len(served) * period_seconds)
    comparison = compare_cost(
        basis=basis,
        predictions_per_hour=per_hour,
        champion_latency=champion_latency,
        challenger_latency=challenger_latency,
        max_increase=max_increase,
        latency_unit_ms=latency_unit_ms,
    )
    return CostFromWindows(comparison, comparison.reason())
