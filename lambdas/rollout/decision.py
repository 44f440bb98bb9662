"""The rollout's one decision path: what the judge sees at a look, and what the rollout does after it.

The judge handler (lambdas/handlers/rollout_judge.py) and the benchmark (bench/) both call
``evidence_range`` to know which minutes to read and ``decide_look`` to decide, so the benchmark's
numbers are the product's.

* Evidence: every window since the rollout started, not only the current step's. Each of the judge's
  tests conditions on (or pairs within) each window's own split, so a window of an earlier step is
  as valid as one of this step; the windows before the challenger had traffic carry no information.
* Looks: the judge is asked every ``JudgeSettings.look_seconds`` (a minute by default), so harm is
  looked for after every window. The state machine's Wait reads ``bake_seconds``: the handler sets it
  to the next look's delay.
* A step lasts at least one bake (``bake_minutes``) and at most ``max_bakes_per_step`` bakes:

  - rollback  -- the judge shows harm, at any look;
  - promote verdict after the minimum bake -- the next step (or the promotion after the last judged
    step);
  - below the last judged step, the step ends on its samples: once it has served every metric's
    minimum sample at its own share with no harm shown (after the minimum bake) it advances;
  - at the last judged step only a promote verdict promotes; with its bakes spent the challenger
    is rolled back, "not shown non-inferior". The last judged step may use the time the earlier
    steps did not need: the judged plan ends within (judged steps x max_bakes_per_step x bake) of
    the rollout's start, as it always could;
  - too little data is its own outcome (``inconclusive``), not a rollback: from the first whole
    minute the first step served to the end of its first bake, every look projects the endpoint's
    measured traffic onto the plan, and if the first step (the smallest) cannot serve its minimum
    samples within its longest bake, the rollout stops at once saying what would (longer bakes, a
    bigger first step, fewer metrics); a step that runs out of bakes without its samples stops the
    same way. The state machine restores the champion on its rollback path, and the outcome, the
    notification and the package say "inconclusive: too little data", not "rolled back".

* Policy (``lambdas.rollout.policy``): harm (per metric) and too little data are answered as the
  endpoint's policy says: ``rollback`` is the above; ``hold`` turns the stop into ``StepAction.HOLD``
  (traffic frozen, a person decides); ``warn`` goes on as if harm were not shown (a promotion still
  needs every metric non-inferior) or, for too little data, past the early projection and to the next
  step. The default policy is the above, and the benchmark measures it.

* A sample ratio mismatch (``lambdas.rollout.sample_ratio``: the step's requests do not follow its
  weights) stops the rollout at any look, whatever the metrics say (they compare biased samples), as
  the policy's ``sample_ratio_mismatch`` answers it (default: roll back; a harm rollback wins over a
  hold). Its reason starts with ``SAMPLE_RATIO_MISMATCH``; ``LookDecision.sample_ratio`` holds the numbers.

* ab_test keeps its split until promote, rollback or the sample budget; shadow bakes on mirrored
  traffic up to its limit; blue_green is SageMaker's.

Pure domain code: no boto3, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from lambdas.rollout.judge import (
    JudgeResult,
    MetricOutcome,
    RolloutWindows,
    VariantWindow,
    Verdict,
    judge,
)
from lambdas.rollout.judge_settings import JudgeSettings, Metric
from lambdas.rollout.payloads import WEIGHT_WHOLE, RolloutRequest, StepAction, Strategy
from lambdas.rollout.policy import DEFAULT_POLICY, Response, Situation, SituationPolicy
from lambdas.rollout.sample_ratio import SAMPLE_RATIO_MISMATCH, SampleRatioEvidence, check_sample_ratio

__all__ = [
    "SAMPLE_RATIO_MISMATCH",
    "TOO_LITTLE_DATA",
    "Look",
    "LookDecision",
    "decide_look",
    "evidence_range",
    "next_action",
    "policy_stop",
    "step_windows",
]

TOO_LITTLE_DATA = "too little data"
"""How every reason of the too-little-data outcome starts."""
PERIOD_SECONDS = 60
"""The CloudWatch period of a window (the reader's default)."""
LONGER_PLAN = (
    "what would fit: longer bakes (bake_minutes, max_bakes_per_step), a bigger step, or fewer judge metrics"
)


@dataclass(frozen=True, slots=True)
class Look:
    """Where a rollout stands when the judge is asked (epoch seconds)."""

    rollout_started_at: int
    """The evidence starts here: the rollout's start (windows without challenger traffic are inert)."""
    step_index: int
    step_started_at: int
    looks_done: int
    """Looks already taken at this step (0 at the step's first look)."""
    now: int

    def __post_init__(self) -> None:
        if self.looks_done < 0 or self.step_index < 0:
            raise ValueError(f"a look needs a step and a count of looks, got {self}")
        if not self.rollout_started_at <= self.step_started_at <= self.now:
            raise ValueError(
                "a look needs rollout start <= step start <= now, got "
                f"{self.rollout_started_at}, {self.step_started_at}, {self.now}"
            )


@dataclass(frozen=True, slots=True)
class LookDecision:
    action: StepAction
    next_step_index: int
    reason: str
    result: JudgeResult
    """The judge's answer on every window since the rollout started."""
    next_look_seconds: int
    """How long the state machine waits before the next look (its Wait reads this as bake_seconds)."""
    champion_requests: int
    challenger_requests: int
    """Served at this step (the ab_test budget counts the whole rollout, which is its one step)."""
    situation: Situation | None = None
    """Harm or too little data, when one arose at this look; `response` is what the policy said to it."""
    response: Response | None = None
    sample_ratio: SampleRatioEvidence | None = None
    """The step's split against its weights; None where there is none to check (shadow, no traffic yet)."""

    @property
    def sample_ratio_mismatch(self) -> bool:
        return self.sample_ratio is not None and self.sample_ratio.mismatch

    @property
    def too_little_data(self) -> bool:
        return self.action is StepAction.INCONCLUSIVE


def evidence_range(look: Look, period_seconds: int = PERIOD_SECONDS) -> tuple[int, int]:
    """The minutes to read: from the rollout's start up to the last whole period before now.

    A retried look within the same period reads the same minutes.
    """
    end = look.now // period_seconds * period_seconds
    return look.rollout_started_at, max(end, look.rollout_started_at)


@dataclass(frozen=True, slots=True)
class _Served:
    """One variant's samples over some windows, per metric."""

    requests: int = 0
    latency_samples: int = 0
    trials: int = 0

    @classmethod
    def over(cls, windows: tuple[VariantWindow, ...]) -> _Served:
        return cls(
            requests=sum(w.requests for w in windows),
            latency_samples=sum(w.latency.sample_count for w in windows if w.latency is not None),
            trials=sum(w.outcome_trials for w in windows),
        )


def step_windows(windows: RolloutWindows, step_started_at: int) -> RolloutWindows:
    if not windows.period_starts:
        return windows
    first = next(
        (i for i, s in enumerate(windows.period_starts) if s >= step_started_at), len(windows.champion)
    )
    return RolloutWindows(
        champion=windows.champion[first:],
        challenger=windows.challenger[first:],
        period_starts=windows.period_starts[first:],
    )


def _missing_samples(served: _Served, settings: JudgeSettings) -> list[str]:
    """The minimum samples a step has not served yet, per metric in play."""
    needs = {
        Metric.ERRORS: ("requests", served.requests, settings.min_requests),
        Metric.LATENCY: ("latency samples", served.latency_samples, settings.min_latency_samples),
        Metric.CONVERSION: ("feedback trials", served.trials, settings.min_trials),
    }
    return [
        f"{have}/{need} {what}"
        for metric in settings.metrics
        for what, have, need in (needs[metric],)
        if have < need
    ]


def decide_look(
    request: RolloutRequest,
    settings: JudgeSettings,
    look: Look,
    windows: RolloutWindows,
    policy: SituationPolicy = DEFAULT_POLICY,
) -> LookDecision:
    """Judge every window since the rollout started, then decide what the rollout does next, answering
    harm and too little data as `policy` says (by default: roll back, stop as inconclusive)."""
    if request.strategy is Strategy.BLUE_GREEN:
        raise ValueError("blue_green is judged by SageMaker's guardrails, not step by step")
    step = step_windows(windows, look.step_started_at)
    champion, challenger = _Served.over(step.champion), _Served.over(step.challenger)
    # The verdict comes from the tests; the error ratio's bounds (costly) only for a look that acts.
    result = judge(windows, settings, bounds=False)
    decided = _decide(request, settings, look, result, step, policy=policy)
    sample_ratio = _sample_ratio(request, settings, look, step)
    mismatch = sample_ratio is not None and sample_ratio.mismatch
    if decided.action is not StepAction.BAKE or mismatch:
        result = judge(windows, settings)  # the same verdict, now with the bounds for the reasons
        decided = _decide(request, settings, look, result, step, policy=policy)
    if sample_ratio is not None and sample_ratio.mismatch:
        decided = _answer_mismatch(decided, sample_ratio, look.step_index, policy=policy)
    return LookDecision(
        action=decided.action,
        next_step_index=decided.next_index,
        reason=decided.reason,
        situation=decided.situation,
        response=decided.response,
        result=result,
        next_look_seconds=settings.look_seconds,
        champion_requests=champion.requests,
        challenger_requests=challenger.requests,
        sample_ratio=sample_ratio,
    )


def _sample_ratio(
    request: RolloutRequest, settings: JudgeSettings, look: Look, step: RolloutWindows
) -> SampleRatioEvidence | None:
    """The step's requests against its weights (shadow traffic is mirrored: no split to check)."""
    if request.strategy is Strategy.SHADOW:
        return None
    share = request.challenger_shares[look.step_index] / WEIGHT_WHOLE
    return check_sample_ratio(
        step, expected_share=share, step_started_at=look.step_started_at, settings=settings, bounds=False
    )


def next_action(
    request: RolloutRequest,
    settings: JudgeSettings,
    look: Look,
    result: JudgeResult,
    step: RolloutWindows,
    *,
    policy: SituationPolicy = DEFAULT_POLICY,
) -> tuple[StepAction, int, str]:
    """(action, next step index, reason) after the judge's result; `step` holds this step's windows."""
    decided = _decide(request, settings, look, result, step, policy=policy)
    return decided.action, decided.next_index, decided.reason


class _Decided(NamedTuple):
    action: StepAction
    next_index: int
    reason: str
    situation: Situation | None = None
    """The situation the policy answered (harm, too little data), if one arose at this look."""
    response: Response | None = None


def _decide(
    request: RolloutRequest,
    settings: JudgeSettings,
    look: Look,
    result: JudgeResult,
    step: RolloutWindows,
    *,
    policy: SituationPolicy,
) -> _Decided:
    index = look.step_index
    if result.verdict is Verdict.ROLLBACK:
        harmed = [e.metric for e in result.evidence if e.outcome is MetricOutcome.HARM]
        said = f"judge: {result.reason}"
        stopped = policy_stop(Situation.HARM, StepAction.ROLLBACK, index, said, policy=policy, metrics=harmed)
        if stopped is not None:
            return stopped
        # warn: the other rules decide as if no harm were shown; a promotion still needs every metric
        # shown non-inferior, which a metric showing harm is not.
        unharmed = result.model_copy(update={"verdict": Verdict.CONTINUE})
        action, next_index, reason = _without_harm(request, settings, look, unharmed, step, policy=policy)
        return _Decided(action, next_index, f"warning, harm: {said}; {reason}", Situation.HARM, Response.WARN)
    action, next_index, reason = _without_harm(request, settings, look, result, step, policy=policy)
    if action is not StepAction.INCONCLUSIVE:
        return _Decided(action, next_index, reason)
    stopped = policy_stop(Situation.TOO_LITTLE_DATA, action, index, reason, policy=policy)
    # warn on too little data was answered inside the rules (the projection told, the next step taken).
    return stopped or _Decided(action, next_index, reason, Situation.TOO_LITTLE_DATA, Response.WARN)


def _answer_mismatch(
    decided: _Decided, evidence: SampleRatioEvidence, index: int, *, policy: SituationPolicy
) -> _Decided:
    """A sample ratio mismatch as the policy answers it: by default a rollback whatever the metrics say.
    A hold never overrides a rollback the metrics' own policy chose; a warning goes on as decided."""
    stopped = policy_stop(
        Situation.SAMPLE_RATIO_MISMATCH, StepAction.ROLLBACK, index, evidence.reason(), policy=policy
    )
    rolled_back = decided.action is StepAction.ROLLBACK
    if stopped is not None and not (stopped.action is StepAction.HOLD and rolled_back):
        return stopped
    stopping = (StepAction.ROLLBACK, StepAction.INCONCLUSIVE, StepAction.HOLD)
    if stopped is not None or decided.action in stopping:
        return decided
    return _Decided(
        decided.action,
        decided.next_index,
        f"warning, {evidence.reason()}; {decided.reason}",
        Situation.SAMPLE_RATIO_MISMATCH,
        Response.WARN,
    )


def policy_stop(
    situation: Situation,
    stop: StepAction,
    index: int,
    reason: str,
    *,
    policy: SituationPolicy,
    metrics: Sequence[Metric] = (),
) -> _Decided | None:
    """A situation that would `stop` the rollout (rollback, inconclusive), answered as the policy says: the
    stop itself, a hold at the same step, or None for a warning (the caller goes on). Each situation's
    check calls this (a sample-ratio mismatch too: ``Situation.SAMPLE_RATIO_MISMATCH``)."""
    response = policy.response(situation, metrics)
    if response is Response.ROLLBACK:
        return _Decided(stop, index, reason, situation, response)
    if response is Response.HOLD:
        held = "held on harm" if situation is Situation.HARM else "held"
        return _Decided(StepAction.HOLD, index, f"{held}: {reason}", situation, response)
    return None


def _without_harm(
    request: RolloutRequest,
    settings: JudgeSettings,
    look: Look,
    result: JudgeResult,
    step: RolloutWindows,
    *,
    policy: SituationPolicy,
) -> tuple[StepAction, int, str]:
    served = _Served.over(step.challenger)
    if request.strategy is Strategy.AB_TEST:
        return _ab_test(request, look, result, step)
    elapsed = look.now - look.step_started_at
    bake = request.bake_minutes * 60
    longest = bake * request.max_bakes_per_step
    if request.strategy is Strategy.SHADOW:
        return _single_phase(
            look=look,
            result=result,
            served=served,
            settings=settings,
            elapsed=elapsed,
            bake=bake,
            longest=longest,
        )
    return _stepped(
        request, settings, look, result, step, warn_little_data=policy.too_little_data is Response.WARN
    )


def _stepped(
    request: RolloutRequest,
    settings: JudgeSettings,
    look: Look,
    result: JudgeResult,
    step: RolloutWindows,
    *,
    warn_little_data: bool = False,
) -> tuple[StepAction, int, str]:
    served = _Served.over(step.challenger)
    index = look.step_index
    elapsed = look.now - look.step_started_at
    bake = request.bake_minutes * 60
    longest = bake * request.max_bakes_per_step
    shares = request.challenger_shares
    if not 0 <= index < len(shares) - 1:
        raise ValueError(f"step {index} is not a judged step of a {len(shares)}-step plan")
    last_judged = index == len(shares) - 2
    here = f"at {shares[index]} % after {elapsed // 60} min"
    if index == 0 and elapsed <= bake:
        # Every look of the first bake, from the first whole minute the step served: the estimate firms up
        # as the minutes come in, and a plan the traffic cannot meet is said before any more is spent.
        shortfall = _plan_shortfall(request, settings, step)
        if shortfall and not warn_little_data:
            return StepAction.INCONCLUSIVE, index, shortfall
    if elapsed < bake:
        return (
            StepAction.BAKE,
            index,
            f"judge: {result.verdict.value} {here}; the step bakes {bake // 60} min",
        )
    if result.verdict is Verdict.PROMOTE:
        action = StepAction.PROMOTE if last_judged else StepAction.ADVANCE
        return action, index + 1, f"judge: non-inferior {here}"
    missing = _missing_samples(served, settings)
    if not last_judged and result.verdict is Verdict.CONTINUE and not missing:
        return (
            StepAction.ADVANCE,
            index + 1,
            f"no harm shown {here} on this step's minimum samples ({served.requests} challenger requests)",
        )
    if last_judged:
        # The time earlier steps did not need is the last judged step's: the judged plan still ends
        # within (judged steps x longest bake) of the rollout's start.
        plan_end = look.rollout_started_at + (len(shares) - 1) * longest
        longest = max(longest, plan_end - look.step_started_at)
    if elapsed + settings.look_seconds <= longest:
        return StepAction.BAKE, index, f"judge: {result.verdict.value} {here}"
    if missing or result.verdict is Verdict.INCONCLUSIVE:
        what = ", ".join(missing) or result.reason
        if warn_little_data and not last_judged:
            # warn: more traffic at the next step may bring the samples; a promotion still needs them.
            return (
                StepAction.ADVANCE,
                index + 1,
                f"warning, {TOO_LITTLE_DATA} {here}, the step's longest bake: {what}; on to the next step",
            )
        return (
            StepAction.INCONCLUSIVE,
            index,
            f"{TOO_LITTLE_DATA} {here}, the step's longest bake: {what}; {LONGER_PLAN}",
        )
    return (
        StepAction.ROLLBACK,
        index,
        f"not shown non-inferior {here}, the step's longest bake: {result.reason}",
    )


def _ab_test(
    request: RolloutRequest, look: Look, result: JudgeResult, step: RolloutWindows
) -> tuple[StepAction, int, str]:
    index = look.step_index
    if result.verdict is Verdict.PROMOTE:
        return StepAction.PROMOTE, index, "judge: non-inferior on the fixed split"
    budget = request.sample_budget or 0
    served = min(sum(w.requests for w in step.champion), sum(w.requests for w in step.challenger))
    if served >= budget:
        return (
            StepAction.ROLLBACK,
            index,
            f"sample budget of {budget} requests per variant spent without an answer "
            f"({result.verdict.value}); the champion stays",
        )
    return StepAction.BAKE, index, f"judge: {result.verdict.value}, {served}/{budget} served"


def _single_phase(
    *,
    look: Look,
    result: JudgeResult,
    served: _Served,
    settings: JudgeSettings,
    elapsed: int,
    bake: int,
    longest: int,
) -> tuple[StepAction, int, str]:
    index = look.step_index
    if result.verdict is Verdict.PROMOTE and elapsed >= bake:
        return StepAction.PROMOTE, index, "judge: non-inferior on mirrored traffic"
    if elapsed + settings.look_seconds <= longest:
        return StepAction.BAKE, index, f"judge: {result.verdict.value}"
    if result.verdict is Verdict.INCONCLUSIVE or _missing_samples(served, settings):
        return (
            StepAction.INCONCLUSIVE,
            index,
            f"{TOO_LITTLE_DATA} on mirrored traffic after {elapsed // 60} min; {LONGER_PLAN}",
        )
    return (
        StepAction.ROLLBACK,
        index,
        f"judge still {result.verdict.value} after {elapsed // 60} min on mirrored traffic",
    )


def _plan_shortfall(request: RolloutRequest, settings: JudgeSettings, step: RolloutWindows) -> str:
    """Can the endpoint's traffic give every judged step its minimum samples?

    The measured rates (requests per second over both variants, over the minutes the step's windows
    span; latency samples and feedback trials per request) projected onto the first step's share, the
    smallest. Empty when the plan fits, or when no whole minute of the step has been read yet
    (CloudWatch may lag; a later look, or the longest bake, decides).
    """
    both = _Served.over(step.champion + step.challenger)
    if both.requests == 0 or not step.period_starts:
        return ""
    span = step.period_starts[-1] + PERIOD_SECONDS - step.period_starts[0]
    rate = both.requests / span
    per_request = {
        Metric.ERRORS: ("requests", 1.0, settings.min_requests),
        Metric.LATENCY: (
            "latency samples",
            both.latency_samples / both.requests,
            settings.min_latency_samples,
        ),
        Metric.CONVERSION: ("feedback trials", both.trials / both.requests, settings.min_trials),
    }
    longest = request.bake_minutes * 60 * request.max_bakes_per_step
    first_share = request.challenger_shares[0] / 100
    worst_seconds = 0.0
    binding = ""
    for metric in settings.metrics:
        what, fraction, need = per_request[metric]
        seconds = math.inf if fraction == 0.0 else need / (rate * first_share * fraction)
        if seconds > worst_seconds:
            worst_seconds, binding = seconds, f"{need} {what} ({metric.value})"
    if worst_seconds <= longest:
        return ""
    if math.isinf(worst_seconds):
        return (
            f"{TOO_LITTLE_DATA}: the endpoint reports no {binding.split(' (')[0].split(' ', 1)[1]} at "
            f"{rate:.3g} requests/s; take that metric out of judge.metrics or send its data"
        )
    needed_minutes = math.ceil(worst_seconds / 60)
    bake_needed = math.ceil(needed_minutes / request.max_bakes_per_step)
    share_needed = math.ceil(100 * first_share * worst_seconds / longest)
    return (
        f"{TOO_LITTLE_DATA}: at {rate:.3g} requests/s the first step ({request.challenger_shares[0]} %) "
        f"needs about {needed_minutes} min for {binding}, more than its longest bake of {longest // 60} min; "
        f"what would fit: bake_minutes >= {bake_needed}, a first step of >= {share_needed} %, "
        "or fewer judge metrics"
    )
