"""Payloads of the rollout workflow: what starts a rollout, what each step decided, how it ended.

One schema for the state machine's input and the Lambdas that read it. Every model is frozen and
refuses unknown keys, so a typo in an input is an error and not a silently ignored setting.

Traffic weights are whole percentages (``WEIGHT_WHOLE`` = 100) per production variant; SageMaker
reads them as relative weights, so 95 / 5 and 0.95 / 0.05 split traffic alike.

Pure domain code: pydantic and the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any, Generic, Literal, Self, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lambdas.rollout.judge import Verdict
from lambdas.shared.validation import describe_problems

__all__ = [
    "DEFAULT_TRAFFIC_STEPS",
    "WEIGHT_WHOLE",
    "BlueGreenPolicy",
    "BlueGreenSettings",
    "InvalidRolloutRequest",
    "OutcomeStatus",
    "RolloutOutcome",
    "RolloutRequest",
    "StepAction",
    "StepOutcome",
    "Strategy",
    "TrafficStep",
    "VariantNames",
    "VariantSlots",
    "package_group_of",
    "parse_rollout_request",
]

WEIGHT_WHOLE = 100
"""Weights are percentages: the variants' weights at a step add up to this."""

# SageMaker's rule for endpoint, variant, model and config names.
SAGEMAKER_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
SageMakerName = Annotated[str, Field(pattern=SAGEMAKER_NAME_PATTERN, min_length=1, max_length=63)]
# A versioned package: arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>.
PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/"
    r"(?P<group>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})/(?P<version>[1-9]\d*)$"
)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Strategy(StrEnum):
    """How the challenger gets its traffic (the same values as the environment config's strategy)."""

    CANARY = "canary"
    LINEAR = "linear"
    BLUE_GREEN = "blue_green"
    SHADOW = "shadow"
    AB_TEST = "ab_test"


STEPPED_STRATEGIES = frozenset({Strategy.CANARY, Strategy.LINEAR})

DEFAULT_TRAFFIC_STEPS: Mapping[Strategy, tuple[int, ...]] = {
    Strategy.CANARY: (5, 25, 50, 100),
    Strategy.LINEAR: (25, 50, 75, 100),
    Strategy.AB_TEST: (50,),
    Strategy.SHADOW: (),
    Strategy.BLUE_GREEN: (),
}
"""Challenger shares when a request names none. Shadow and blue/green take no steps."""


NameT = TypeVar("NameT", bound=str)


class VariantSlots(_Frozen, Generic[NameT]):
    """The endpoint's variant slots (infra/endpoint.py): the champion keeps its name for good.

    Generic in the naming rule: the Lambdas accept any SageMaker name (``VariantNames``), the environment
    config its own stricter one (``infra/config.py``), with one set of defaults and one distinctness rule.
    """

    champion: NameT = Field(default=cast("NameT", "champion"))
    challenger: NameT = Field(default=cast("NameT", "challenger"))
    shadow: NameT = Field(default=cast("NameT", "shadow"))

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        names = [self.champion, self.challenger, self.shadow]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be distinct, got {names}")
        return self


class VariantNames(VariantSlots[SageMakerName]):
    """The variant slots as the Lambdas read them: any SageMaker name."""


class BlueGreenSettings(_Frozen):
    """SageMaker deployment guardrails (the environment config's `rollout.blue_green` is this model)."""

    traffic_routing: Literal["CANARY", "LINEAR", "ALL_AT_ONCE"] = "CANARY"
    step_percent: int = Field(default=10, ge=1, le=99, description="canary size or linear step")
    wait_interval_seconds: int = Field(default=600, ge=0, le=3600)
    termination_wait_seconds: int = Field(default=300, ge=0, le=3600)
    maximum_execution_timeout_seconds: int = Field(default=14400, ge=600, le=28800)


class BlueGreenPolicy(BlueGreenSettings):
    """The guardrails of one `blue_green` rollout: the settings and the alarms that roll it back."""

    rollback_alarm_names: tuple[Annotated[str, Field(min_length=1, max_length=255)], ...] = Field(
        default=(), max_length=10, description="alarms that make SageMaker roll the deployment back"
    )


class TrafficStep(_Frozen):
    """The weight of each variant at one step, in percent of the whole."""

    weights: dict[str, int] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights_make_the_whole(self) -> Self:
        outside = {name: weight for name, weight in self.weights.items() if not 0 <= weight <= WEIGHT_WHOLE}
        if outside:
            raise ValueError(f"weights must be within 0-{WEIGHT_WHOLE} percent, got {outside}")
        total = sum(self.weights.values())
        if total != WEIGHT_WHOLE:
            raise ValueError(
                f"weights must add up to {WEIGHT_WHOLE} percent, got {total} from {self.weights}"
            )
        return self

    def share(self, variant: str) -> int:
        return self.weights.get(variant, 0)


def package_group_of(model_package_arn: str) -> str | None:
    """The package group of a versioned model package ARN; None when the ARN is not one."""
    match = PACKAGE_ARN.match(model_package_arn)
    return match["group"] if match else None


class RolloutRequest(_Frozen):
    """The rollout workflow's input: which endpoint, which candidate package, and how to roll it out.

    ``traffic_steps`` may be given as challenger shares (``[5, 25, 50, 100]``, as in the config file)
    or as full weight maps (``[{"weights": {"champion": 95, "challenger": 5}}, ...]``).
    """

    endpoint: Annotated[str, Field(min_length=1, max_length=40, description="logical endpoint name")]
    endpoint_name: SageMakerName = Field(description="the physical SageMaker endpoint")
    model_package_arn: str = Field(description="the candidate: a versioned package of the family's group")
    model_package_group: SageMakerName = Field(description="the endpoint's model family's package group")
    strategy: Strategy = Strategy.CANARY
    traffic_steps: tuple[TrafficStep, ...] = ()
    bake_minutes: int = Field(default=10, ge=1, le=1440)
    max_bakes_per_step: int = Field(
        default=6, ge=1, le=100, description="bakes at one step before an undecided judge ends it"
    )
    sample_budget: int | None = Field(
        default=None, ge=1, description="ab_test: requests per variant after which the test stops"
    )
    variants: VariantNames = VariantNames()
    blue_green: BlueGreenPolicy = BlueGreenPolicy()

    @model_validator(mode="before")
    @classmethod
    def _steps_from_shares(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        raw = dict(data)
        try:
            variants = VariantNames.model_validate(raw.get("variants") or {})
        except ValidationError:
            return raw  # the field's own validation reports it
        if "traffic_steps" not in raw:
            strategy = raw.get("strategy", Strategy.CANARY)
            if not isinstance(strategy, str) or strategy not in DEFAULT_TRAFFIC_STEPS:
                return raw  # the field's own validation reports it
            raw["traffic_steps"] = list(DEFAULT_TRAFFIC_STEPS[Strategy(strategy)])
        steps = raw["traffic_steps"]
        if isinstance(steps, Sequence) and not isinstance(steps, str):
            raw["traffic_steps"] = [_step_from_share(step, variants) for step in steps]
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self._check_package_family()
        self._check_step_variants()
        _STRATEGY_RULES[self.strategy](self)
        return self

    @property
    def challenger_slot(self) -> str:
        """The variant the candidate runs as: the shadow variant for `shadow`, else the challenger."""
        return self.variants.shadow if self.strategy is Strategy.SHADOW else self.variants.challenger

    @property
    def challenger_shares(self) -> tuple[int, ...]:
        return tuple(step.share(self.variants.challenger) for step in self.traffic_steps)

    def _check_package_family(self) -> None:
        group = package_group_of(self.model_package_arn)
        if group is None:
            raise ValueError(
                f"model_package_arn {self.model_package_arn!r} is not a versioned model package ARN "
                "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
            )
        if group != self.model_package_group:
            raise ValueError(
                f"model package {self.model_package_arn} belongs to group {group!r}, but endpoint "
                f"{self.endpoint_name} serves the family of group {self.model_package_group!r}"
            )

    def _check_step_variants(self) -> None:
        known = {self.variants.champion, self.variants.challenger}
        for index, step in enumerate(self.traffic_steps):
            unknown = sorted(set(step.weights) - known)
            if unknown:
                raise ValueError(
                    f"traffic_steps[{index}]: unknown variant(s) {unknown}; the endpoint's variants are "
                    f"{self.variants.champion!r} and {self.variants.challenger!r}"
                )
            missing = sorted(known - set(step.weights))
            if missing:
                raise ValueError(f"traffic_steps[{index}]: no weight for variant(s) {missing}")


def _step_from_share(step: Any, variants: VariantNames) -> Any:
    """A bare number is the challenger's share; the champion takes the rest."""
    if isinstance(step, bool) or not isinstance(step, int):
        return step
    return {"weights": {variants.champion: WEIGHT_WHOLE - step, variants.challenger: step}}


def _check_stepped(request: RolloutRequest) -> None:
    shares = request.challenger_shares
    if len(shares) < 2:
        raise ValueError(
            f"{request.strategy.value} needs at least one judged step below 100 % and a final 100 % step, "
            f"got challenger shares {list(shares)}"
        )
    if any(later <= earlier for earlier, later in pairwise(shares)):
        raise ValueError(f"the challenger's share must strictly increase step by step, got {list(shares)}")
    if shares[0] == 0:
        raise ValueError("the first step must give the challenger some traffic, got 0 %")
    if shares[-1] != WEIGHT_WHOLE:
        raise ValueError(f"the last step must give the challenger 100 %, got {shares[-1]} %")


def _check_ab_test(request: RolloutRequest) -> None:
    shares = request.challenger_shares
    if len(shares) != 1 or not 0 < shares[0] < WEIGHT_WHOLE:
        raise ValueError(f"ab_test takes one fixed split with both variants serving, got {list(shares)}")
    if request.sample_budget is None:
        raise ValueError("ab_test needs a sample_budget (requests per variant)")


def _check_no_steps(request: RolloutRequest) -> None:
    if request.traffic_steps:
        how = {
            Strategy.SHADOW: "the shadow variant gets a copy of every request and users see none of it",
            Strategy.BLUE_GREEN: "SageMaker shifts the traffic by the blue_green policy",
        }[request.strategy]
        raise ValueError(f"{request.strategy.value} takes no traffic_steps: {how}")


def _check_blue_green(request: RolloutRequest) -> None:
    _check_no_steps(request)
    if not request.blue_green.rollback_alarm_names:
        raise ValueError(
            "blue_green needs blue_green.rollback_alarm_names: without alarms nothing rolls back"
        )


_STRATEGY_RULES = {
    Strategy.CANARY: _check_stepped,
    Strategy.LINEAR: _check_stepped,
    Strategy.AB_TEST: _check_ab_test,
    Strategy.SHADOW: _check_no_steps,
    Strategy.BLUE_GREEN: _check_blue_green,
}


class InvalidRolloutRequest(ValueError):
    """A workflow input that cannot start a rollout; the message names every problem and its field."""


def parse_rollout_request(raw: Any) -> RolloutRequest:
    """Validate the workflow input, or raise InvalidRolloutRequest listing field and problem."""
    try:
        return RolloutRequest.model_validate(raw)
    except ValidationError as error:
        problems = describe_problems(error, unknown_field="unknown key", separator="\n  ")
        raise InvalidRolloutRequest(
            f"invalid rollout request ({error.error_count()} problem(s))\n  {problems}"
        ) from None


class StepAction(StrEnum):
    """What the workflow does after a judge verdict."""

    ADVANCE = "advance"
    BAKE = "bake"
    ROLLBACK = "rollback"
    PROMOTE = "promote"
    INCONCLUSIVE = "inconclusive"
    """Too little data to judge: the champion takes all traffic back, and nothing is said of the model."""
    HOLD = "hold"
    """Traffic frozen at the current step until a person resumes, promotes or aborts, or the hold times
    out (lambdas/rollout/policy.py, lambdas/rollout/hold.py); the judge keeps looking meanwhile."""


class StepOutcome(_Frozen):
    """One judged bake: the traffic it ran at, what it served, the verdict and the action taken."""

    step_index: int = Field(ge=0)
    challenger_percent: int = Field(ge=0, le=WEIGHT_WHOLE)
    bake: int = Field(ge=1, description="which bake at this step, from 1")
    verdict: Verdict
    action: StepAction
    reason: str = Field(min_length=1)
    champion_requests: int = Field(default=0, ge=0)
    challenger_requests: int = Field(default=0, ge=0)


class OutcomeStatus(StrEnum):
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    INCONCLUSIVE = "inconclusive"
    """Stopped for too little data: the champion serves again, the package waits for a person's approval."""
    FAILED = "failed"


class RolloutOutcome(_Frozen):
    """How a rollout ended. Every outcome but promoted says why."""

    status: OutcomeStatus
    endpoint_name: SageMakerName
    model_package_arn: str
    reason: str = ""
    steps: tuple[StepOutcome, ...] = ()

    @model_validator(mode="after")
    def _reason_when_not_promoted(self) -> Self:
        if self.status is not OutcomeStatus.PROMOTED and not self.reason.strip():
            raise ValueError(f"a {self.status.value} outcome needs a reason")
        return self
