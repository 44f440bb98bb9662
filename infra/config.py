"""Typed configuration of one environment, read from `infra/environments/<env>.yaml`.

One schema serves the CDK app at synth time and (through the models it embeds from
`lambdas/`) the Lambdas at run time. A bad file fails synth with the file, the field and
the problem named; nothing is synthesized from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lambdas.gates import GateSettings
from lambdas.retraining.settings import INSTANCE_TYPE_PATTERN, MAX_RUNTIME_MINUTES, Recipe
from lambdas.rollout.guardrails import ALARM_ARN_PATTERN, DEFAULT_INSTANCE_PRICES, GuardrailSettings
from lambdas.rollout.judge_settings import JudgeSettings
from lambdas.rollout.payloads import BlueGreenSettings, Strategy, VariantSlots
from lambdas.rollout.policy import PROMOTION_GATE, GateStep, SituationPolicy
from lambdas.shared.operations import environment_prefix

ENVIRONMENTS_DIR = Path(__file__).parent / "environments"

# SageMaker names allow [a-zA-Z0-9-] up to 63 characters; lower case keeps flag keys and alarm names
# stable, and the lengths keep "mlrollout-<env>-<endpoint>-bootstrap" within 63.
NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
ResourceName = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=24)]
EnvironmentName = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=16)]
ECR_IMAGE_PATTERN = (
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*)(:[\w.-]+|@sha256:[a-f0-9]{64})$"
)
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SCHEDULE_PATTERN = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^)]+\))$")


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InitialModel(StrictModel):
    """The model the endpoint starts with. Later versions are runtime state (see README)."""

    image_uri: str = Field(pattern=ECR_IMAGE_PATTERN, description="ECR image URI with a tag or digest")
    model_data_url: str = Field(pattern=r"^s3://[a-z0-9.-]{3,63}/.+\.tar\.gz$")


class Autoscaling(StrictModel):
    min_capacity: int = Field(ge=1, le=100)
    max_capacity: int = Field(ge=1, le=100)
    target_invocations_per_instance: int = Field(default=200, ge=1)
    scale_in_cooldown_seconds: int = Field(default=300, ge=0)
    scale_out_cooldown_seconds: int = Field(default=60, ge=0)

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Self:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity {self.min_capacity} exceeds max_capacity {self.max_capacity}")
        return self


class VariantNames(VariantSlots[ResourceName]):
    """The Lambdas' variant slots (lambdas/rollout/payloads.py) under the config's naming rule."""


class DataCapture(StrictModel):
    enabled: bool = False
    sampling_percentage: int = Field(default=20, ge=1, le=100)


class BusinessMetric(StrictModel):
    """A per-variant business metric (published with EndpointName and VariantName dimensions)."""

    namespace: str = Field(min_length=1, max_length=255, pattern=r"^[^:].*$")
    name: str = Field(min_length=1, max_length=255)
    statistic: Literal["Average", "Sum", "Minimum", "Maximum"] = "Average"
    threshold: float
    # A conversion rate alarms when it falls below; a cost metric when it rises above.
    alarm_when: Literal["below", "above"] = "below"


class RolloutOverrides(StrictModel):
    """An endpoint's own rollout settings; each field given replaces the environment's (``rollout``)."""

    strategy: Strategy | None = None
    traffic_steps: list[int] | None = None
    bake_minutes: int | None = Field(default=None, ge=1, le=1440)
    blue_green: BlueGreenSettings | None = None
    gates: GateSettings | None = None
    judge: JudgeSettings | None = None
    guardrails: GuardrailSettings | None = None
    policy: SituationPolicy | None = None
    approval_before: list[GateStep] | None = None


class Endpoint(StrictModel):
    name: ResourceName
    model_family: ResourceName = Field(description="one model package group per family")
    initial_model: InitialModel
    instance_type: str = Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    initial_instance_count: int = Field(default=1, ge=1, le=100)
    autoscaling: Autoscaling
    variants: VariantNames = VariantNames()
    shadow: bool = Field(default=False, description="the challenger slot is a shadow variant")
    data_capture: DataCapture = DataCapture()
    business_metric: BusinessMetric
    rollout: RolloutOverrides = Field(
        default_factory=RolloutOverrides, description="this endpoint's strategy, steps, judge or gates"
    )


class Rollout(StrictModel):
    strategy: Strategy = Strategy.CANARY
    traffic_steps: list[int] = Field(default_factory=lambda: [5, 25, 50, 100], min_length=1)
    bake_minutes: int = Field(default=10, ge=1, le=1440)
    blue_green: BlueGreenSettings = BlueGreenSettings()
    # The gates' own model (lambdas/), like the judge's: one schema for the YAML and the Lambda.
    gates: GateSettings = GateSettings()
    # The judge's own model (lambdas/): the same schema validates the YAML here and runs in the Lambda.
    judge: JudgeSettings = JudgeSettings()
    # Alarms outside the stack and the cost tolerance (lambdas/rollout/guardrails.py).
    guardrails: GuardrailSettings = GuardrailSettings()
    # Roll back, hold or warn per situation (lambdas/rollout/policy.py); the default is to roll back.
    policy: SituationPolicy = SituationPolicy()
    # A person approves before these steps (challenger shares) or before the promotion ("promote").
    approval_before: list[GateStep] = Field(default_factory=list)

    @field_validator("traffic_steps")
    @classmethod
    def _steps_increase_to_100(cls, steps: list[int]) -> list[int]:
        outside = [step for step in steps if not 0 < step <= 100]
        if outside:
            raise ValueError(f"traffic weights must be within 1-100 percent, got {outside}")
        if any(later <= earlier for earlier, later in pairwise(steps)):
            raise ValueError(f"traffic_steps must strictly increase, got {steps}")
        if steps[-1] != 100:
            raise ValueError(f"traffic_steps must end at 100, got {steps}")
        return steps


class Alarms(StrictModel):
    """Static safety-net thresholds. The judge (not these) decides promotion."""

    period_seconds: Literal[10, 30, 60, 300] = 60
    evaluation_periods: int = Field(default=5, ge=1, le=100)
    datapoints_to_alarm: int = Field(default=3, ge=1, le=100)
    error_5xx_rate_percent: float = Field(default=1.0, gt=0, le=100)
    error_4xx_rate_percent: float = Field(default=10.0, gt=0, le=100)
    model_latency_p99_ms: float = Field(default=500, gt=0)
    minimum_invocations: int = Field(default=20, ge=0, description="rates below this volume count as 0")

    @model_validator(mode="after")
    def _datapoints_fit(self) -> Self:
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError(
                f"datapoints_to_alarm {self.datapoints_to_alarm} exceeds evaluation_periods "
                f"{self.evaluation_periods}"
            )
        return self


class Notifications(StrictModel):
    emails: list[str] = Field(default_factory=list)

    @field_validator("emails")
    @classmethod
    def _emails_valid(cls, emails: list[str]) -> list[str]:
        bad = [email for email in emails if not EMAIL_PATTERN.match(email)]
        if bad:
            raise ValueError(f"not e-mail addresses: {bad}")
        return emails


DRIFT_RATE_PATTERN = re.compile(r"^rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)$")


class DriftMonitoring(StrictModel):
    """The drift monitor (infra/drift_monitor.py): how often the champions' captured inputs are measured,
    and the PSI above which an endpoint's drift alarm goes to ALARM and retrains its family."""

    schedule: str = Field(default="rate(1 hour)", description="EventBridge rate(): the alarm's period")
    psi_threshold: float = Field(default=0.2, gt=0, le=10, description="largest per-feature PSI tolerated")
    evaluation_periods: int = Field(default=1, ge=1, le=100, description="drifted runs in a row to alarm")

    @field_validator("schedule")
    @classmethod
    def _rate_expression(cls, schedule: str) -> str:
        if not DRIFT_RATE_PATTERN.match(schedule):
            raise ValueError(
                "schedule must be rate(1 minute|hour|day) or rate(N minutes|hours|days): the drift alarm's "
                f"period is the interval between runs, which cron() does not have; got {schedule!r}"
            )
        return schedule


class Retraining(StrictModel):
    """Automated retraining (lambdas/retraining, infra/retraining_workflow.py): new data, a schedule or the
    drift alarm trains, evaluates and registers a model version, which the approval hands to the rollout."""

    enabled: bool = False
    schedule: str = Field(default="rate(7 days)", description="EventBridge rate() or cron() expression")
    auto_approve: bool = Field(
        default=False,
        description="register a model that passes the gate as Approved, which starts its rollout at once",
    )
    training_image_uri: str | None = Field(
        default=None,
        pattern=ECR_IMAGE_PATTERN,
        description="ECR image built from containers/training; it runs all three jobs",
    )
    recipe: Recipe = Field(default="logistic", description="pipelines.train's recipe")
    seed: int = Field(default=1, ge=0, le=2**31 - 1, description="the training split's and model's seed")
    processing_instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    training_instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    volume_size_gb: int = Field(default=30, ge=1, le=512, description="each job's storage volume")
    max_runtime_minutes: int = Field(
        default=60, ge=1, le=MAX_RUNTIME_MINUTES, description="each job is stopped after this long"
    )
    poll_seconds: int = Field(default=60, ge=10, le=3600, description="how often a running job is checked")
    data_bucket_name: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="the training-data bucket's name; by default CloudFormation names it",
    )
    drift: DriftMonitoring = DriftMonitoring()

    @field_validator("schedule")
    @classmethod
    def _schedule_expression(cls, schedule: str) -> str:
        if not SCHEDULE_PATTERN.match(schedule):
            raise ValueError(f"schedule must be rate(N unit) or cron(...), got {schedule!r}")
        return schedule

    @model_validator(mode="after")
    def _image_when_enabled(self) -> Self:
        if self.enabled and self.training_image_uri is None:
            raise ValueError(
                "training_image_uri is required when retraining is enabled: the ECR image built from "
                "containers/training, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/mlrollout-training:1"
            )
        return self


class FlagDeployment(StrictModel):
    """AppConfig deployment strategy for flag changes (the kill switch should be fast)."""

    duration_minutes: int = Field(default=0, ge=0, le=1440)
    final_bake_minutes: int = Field(default=1, ge=0, le=1440)
    growth_factor: float = Field(default=100, gt=0, le=100)
    growth_type: Literal["LINEAR", "EXPONENTIAL"] = "LINEAR"


class ReservedConcurrency(StrictModel):
    """Concurrent executions reserved for the functions that stop and undo a rollout, so that a surge of
    other functions in the account (the router under load) cannot throttle them. None reserves nothing:
    an account still at Lambda's default quota of 10 concurrent executions cannot reserve any."""

    abort: int | None = Field(default=2, ge=1, le=100)
    rollback: int | None = Field(default=2, ge=1, le=100)


ACCOUNT_PATTERN = r"^\d{12}$"


class Aws(StrictModel):
    account: str | None = Field(default=None, pattern=ACCOUNT_PATTERN)
    region: str = Field(default="us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")


# Step Functions ends a task after at most a year; a release nobody looks at for that long is stale.
MAX_APPROVAL_TIMEOUT_HOURS = 365 * 24


class Release(StrictModel):
    """Where a package this environment's rollout promotes is offered next (docs/release-chain.md): the
    next environment registers it with this one's evidence and, after the approval asked for here, rolls
    it out. The next environment's file says where it runs (its `aws` section)."""

    next_environment: EnvironmentName
    approval: Literal["none", "manual"] = Field(
        default="manual", description="none: the next environment rolls the package out at once"
    )
    approval_timeout_hours: int = Field(
        default=72,
        ge=1,
        le=MAX_APPROVAL_TIMEOUT_HOURS,
        description="a manual approval not given within this time rejects the package",
    )
    next_account: str | None = Field(
        default=None,
        pattern=ACCOUNT_PATTERN,
        description="the next environment's account when it is not this one (cross-account release)",
    )

    @model_validator(mode="after")
    def _timeout_only_when_manual(self) -> Self:
        if self.approval == "none" and "approval_timeout_hours" in self.model_fields_set:
            raise ValueError(
                "approval_timeout_hours applies to a manual approval only: with approval none the next "
                "environment rolls the package out at once; remove it or set approval: manual"
            )
        return self


class EnvironmentConfig(StrictModel):
    name: EnvironmentName = Field(description="the environment, e.g. dev; prefixes every physical name")
    aws: Aws = Aws()
    endpoints: list[Endpoint] = Field(min_length=1)
    rollout: Rollout = Rollout()
    alarms: Alarms = Alarms()
    notifications: Notifications = Notifications()
    retraining: Retraining = Retraining()
    flag_deployment: FlagDeployment = FlagDeployment()
    reserved_concurrency: ReservedConcurrency = ReservedConcurrency()
    instance_prices: dict[str, float] = Field(
        default_factory=dict,
        description="on-demand USD per instance-hour, over the defaults (lambdas/rollout/guardrails.py)",
    )

    @field_validator("instance_prices")
    @classmethod
    def _prices_valid(cls, prices: dict[str, float]) -> dict[str, float]:
        bad_types = sorted(name for name in prices if not re.match(INSTANCE_TYPE_PATTERN, name))
        if bad_types:
            raise ValueError(f"not SageMaker instance types (ml.<family>.<size>): {bad_types}")
        bad_prices = {name: price for name, price in prices.items() if not 0 < price < 1000}
        if bad_prices:
            raise ValueError(f"prices must be positive USD per hour below 1000, got {bad_prices}")
        return prices

    release: Release | None = Field(
        default=None, description="the next environment a promoted package is offered to"
    )

    @model_validator(mode="after")
    def _release_elsewhere(self) -> Self:
        release = self.release
        if release is None:
            return self
        if release.next_environment == self.name:
            raise ValueError(
                f"release.next_environment: {self.name!r} cannot release into itself; name the next "
                "environment (e.g. prod)"
            )
        if release.next_account is not None:
            if self.aws.account is None:
                raise ValueError(
                    "release.next_account: a cross-account release needs this environment's own account "
                    "(aws.account): the next environment trusts it to send packages and reads its registry"
                )
            if release.next_account == self.aws.account:
                raise ValueError(
                    f"release.next_account: {release.next_account} is this environment's own account; "
                    "leave next_account out for a release within one account"
                )
        return self

    @field_validator("endpoints")
    @classmethod
    def _endpoint_names_unique(cls, endpoints: list[Endpoint]) -> list[Endpoint]:
        names = [endpoint.name for endpoint in endpoints]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate endpoint names: {duplicates}")
        return endpoints

    @model_validator(mode="after")
    def _endpoint_rollouts_valid(self) -> Self:
        """Each endpoint's own rollout (the environment's, with its overrides) is valid and fits its shape."""
        problems: list[str] = []
        for index, endpoint in enumerate(self.endpoints):
            where = f"endpoints.{index}.rollout ({endpoint.name})"
            try:
                rollout = self.rollout_for(endpoint)
            except ValidationError as error:
                problems += [
                    f"{where}.{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
                    for problem in error.errors()
                ]
                continue
            shadow_strategy = rollout.strategy == Strategy.SHADOW
            if endpoint.shadow and not shadow_strategy:
                problems.append(
                    f"{where}.strategy: {rollout.strategy.value!r} would send live traffic to the shadow "
                    "slot, which has no production variant to weigh: set this endpoint's rollout.strategy "
                    "to shadow, or shadow to false"
                )
            if shadow_strategy and not endpoint.shadow:
                problems.append(
                    f"{where}.strategy: 'shadow' needs a shadow slot, and this endpoint's second slot is the "
                    "challenger its pins point to: set shadow: true, or another strategy"
                )
            problems += self._guardrail_problems(where, endpoint, rollout.guardrails)
            problems += _gate_problems(where, rollout)
            if rollout.gates.require_drift_data and not endpoint.data_capture.enabled:
                problems.append(
                    f"{where}.gates.require_drift_data: endpoint {endpoint.name!r} captures no requests, "
                    "which the drift gate needs: enable its data_capture or set require_drift_data to false"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _guardrail_problems(self, where: str, endpoint: Endpoint, guardrails: GuardrailSettings) -> list[str]:
        """Alarms outside the stack, in the stack's region (their events reach its default bus only);
        a price for the endpoint's instance type when its cost is judged."""
        problems = []
        for reference in guardrails.alarms:
            arn = ALARM_ARN_PATTERN.match(reference)
            name = arn["name"] if arn else reference
            if name.startswith(f"{self.prefix}-"):
                problems.append(
                    f"{where}.guardrails.alarms: {name!r} is named like this environment's own alarms "
                    f"({self.prefix}-...): its endpoints' alarms abort their rollouts already; list alarms "
                    "outside the stack"
                )
            if arn and arn["region"] != self.aws.region:
                problems.append(
                    f"{where}.guardrails.alarms: {reference!r} is in {arn['region']}, the stack in "
                    f"{self.aws.region}: an alarm's state changes reach only its own region's event bus"
                )
            if arn and self.aws.account is not None and arn["account"] != self.aws.account:
                problems.append(
                    f"{where}.guardrails.alarms: {reference!r} is in account {arn['account']}, the stack "
                    f"in {self.aws.account}: an alarm's state changes reach only its own account's event bus"
                )
        if guardrails.max_cost_increase is not None and endpoint.instance_type not in self.prices:
            problems.append(
                f"{where}.guardrails.max_cost_increase: no on-demand price for {endpoint.instance_type}: "
                "add it to instance_prices"
            )
        return problems

    @property
    def prices(self) -> dict[str, float]:
        """On-demand USD per instance-hour: the defaults with the config's instance_prices over them."""
        return {**DEFAULT_INSTANCE_PRICES, **self.instance_prices}

    def rollout_for(self, endpoint: Endpoint) -> Rollout:
        """The endpoint's rollout settings: the environment's, with the endpoint's own fields over them."""
        own = endpoint.rollout.model_dump(exclude_none=True)
        return Rollout.model_validate({**self.rollout.model_dump(), **own})

    @property
    def prefix(self) -> str:
        return environment_prefix(self.name)

    def endpoint_name(self, endpoint: Endpoint) -> str:
        """The physical SageMaker endpoint name; alarms use it too, so they never reference the resource."""
        return f"{self.prefix}-{endpoint.name}"

    @property
    def model_families(self) -> list[str]:
        return sorted({endpoint.model_family for endpoint in self.endpoints})


def _gate_problems(where: str, rollout: Rollout) -> list[str]:
    """A gate is before a judged step's traffic (not the first: the gates and the package's approval
    come before it) or before the promotion; blue_green's traffic is SageMaker's to shift."""
    field = f"{where}.approval_before"
    gates = rollout.approval_before
    if not gates:
        return []
    if rollout.strategy is Strategy.BLUE_GREEN:
        return [f"{field}: blue_green's traffic is shifted by SageMaker, with no step to approve before"]
    problems = []
    if len(set(gates)) != len(gates):
        problems.append(f"{field}: each gate once, got {gates}")
    stepped = rollout.strategy in (Strategy.CANARY, Strategy.LINEAR)
    later_steps = rollout.traffic_steps[1:-1] if stepped else []
    for gate in gates:
        if gate != PROMOTION_GATE and gate not in later_steps:
            problems.append(
                f"{field}: {gate} is not a step after the first and before the promotion "
                f"(the steps: {rollout.traffic_steps}); name one of {later_steps} or 'promote'"
            )
    return problems


class ConfigError(Exception):
    """A configuration file that cannot be used, with the file, field and problem named."""


def _describe(error: ValidationError, path: Path) -> str:
    lines = [f"{path}: invalid configuration ({error.error_count()} problem(s))"]
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {field}: {message}")
    return "\n".join(lines)


def available_environments(directory: Path = ENVIRONMENTS_DIR) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.yaml"))


def load_config(env: str, directory: Path = ENVIRONMENTS_DIR) -> EnvironmentConfig:
    """Read and validate `<directory>/<env>.yaml`; raise ConfigError naming file, field, problem."""
    path = directory / f"{env}.yaml"
    if not path.is_file():
        known = ", ".join(available_environments(directory)) or "none"
        raise ConfigError(f"{path}: no configuration for environment {env!r} (known: {known})")
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    if raw.get("name", env) != env:
        raise ConfigError(f"{path}: name: {raw['name']!r} does not match the file's environment {env!r}")
    try:
        return EnvironmentConfig.model_validate({"name": env, **raw})
    except ValidationError as error:
        raise ConfigError(_describe(error, path)) from error


@dataclass(frozen=True)
class ReleaseTarget:
    """The environment a promoted package is offered to, as the releasing environment sees it."""

    environment: str
    region: str
    account: str | None = None  # None: the releasing environment's own account


@dataclass(frozen=True)
class ReleaseSource:
    """The environment that offers its promoted packages to this one, and the approval they wait for."""

    environment: str
    region: str
    approval: Literal["none", "manual"]
    approval_timeout_hours: int
    account: str | None = None  # None: this environment's own account


@dataclass(frozen=True)
class ReleaseChain:
    """An environment's neighbours in the release chain (`release:` in the releasing one's file)."""

    next: ReleaseTarget | None = None
    previous: ReleaseSource | None = None


def release_chain(config: EnvironmentConfig, directory: Path = ENVIRONMENTS_DIR) -> ReleaseChain:
    """Read the chain around `config` from the environment files: the next environment's file (where it
    runs) and the one file, if any, whose `release.next_environment` names this environment."""
    return ReleaseChain(next=_release_target(config, directory), previous=_release_source(config, directory))


def _release_target(config: EnvironmentConfig, directory: Path) -> ReleaseTarget | None:
    release = config.release
    if release is None:
        return None
    where = directory / f"{config.name}.yaml"
    try:
        following = load_config(release.next_environment, directory)
    except ConfigError as error:
        raise ConfigError(f"{where}: release.next_environment: {error}") from None
    declared = following.aws.account
    if declared is not None and release.next_account is None and declared != config.aws.account:
        raise ConfigError(
            f"{where}: release.next_account: {release.next_environment!r} runs in account {declared}, "
            "not this environment's: set release.next_account to it (a cross-account release)"
        )
    if declared is not None and release.next_account is not None and declared != release.next_account:
        raise ConfigError(
            f"{where}: release.next_account: {release.next_account} differs from "
            f"{release.next_environment!r}'s aws.account {declared}"
        )
    return ReleaseTarget(
        environment=following.name, region=following.aws.region, account=release.next_account
    )


def _release_source(config: EnvironmentConfig, directory: Path) -> ReleaseSource | None:
    sources = [
        env
        for env in available_environments(directory)
        if env != config.name and _releases_into(directory / f"{env}.yaml", config.name)
    ]
    if len(sources) > 1:
        raise ConfigError(
            f"{directory}: {sources} all release into {config.name!r}; an environment takes packages from "
            "one environment only"
        )
    if not sources:
        return None
    source = load_config(sources[0], directory)
    assert source.release is not None
    return ReleaseSource(
        environment=source.name,
        region=source.aws.region,
        approval=source.release.approval,
        approval_timeout_hours=source.release.approval_timeout_hours,
        account=source.aws.account if source.release.next_account is not None else None,
    )


def _releases_into(path: Path, env: str) -> bool:
    """Whether the file names `env` as its next environment (read loosely: other files' own problems are
    theirs, reported when they are synthesized)."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    release = raw.get("release") if isinstance(raw, dict) else None
    return isinstance(release, dict) and release.get("next_environment") == env
