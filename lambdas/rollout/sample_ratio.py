"""Sample-ratio check: does each variant serve the share of requests the rollout's weights give it?

A challenger that drops, redirects or fails requests before they are counted, or a router that splits
wrongly, biases every metric the judge compares, and no metric shows it. So the requests themselves are
checked against the weights, at every look, with the conditional binomial test of
`lambdas.rollout.sequential`: given a window's requests n over both variants, the challenger's are
Binomial(n, pi) with pi = rho r / (1 + rho r), where r = share / (1 - share) is the split the weights set
and rho the served-to-expected ratio (1 when the split is right). A mismatch is rho confidently outside
[1 / (1 + tolerance), 1 + tolerance], at a small alpha split over the two sides.

Only the current step's windows count (its weights are known), from ``sample_ratio_settle_seconds``
after its start (a minute by default): the routers' cached weights (30 s) and the endpoint's update may
still mix the first.

Pure domain code: no boto3, no clock.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from lambdas.rollout.judge import RolloutWindows
from lambdas.rollout.judge_settings import JudgeSettings
from lambdas.rollout.sequential import (
    RateRatioData,
    rate_ratio_dispersion,
    rate_ratio_estimate,
    rate_ratio_log_e_value,
    rate_ratio_lower_bound,
    rate_ratio_upper_bound,
)

__all__ = ["SAMPLE_RATIO_MISMATCH", "SETTLE_SECONDS", "SampleRatioEvidence", "check_sample_ratio"]

SAMPLE_RATIO_MISMATCH = "sample ratio mismatch"
"""How the reason of every rollout stopped by this check starts."""
SETTLE_SECONDS = 60
"""The default of ``JudgeSettings.sample_ratio_settle_seconds``: windows starting this soon after the
step's start are left out, the new weights may not hold yet."""


class SampleRatioEvidence(BaseModel):
    """What the requests of a step showed about the split (shares are the challenger's, 0 to 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expected_share: float
    observed_share: float | None
    champion_requests: int
    challenger_requests: int
    windows: int
    ratio: float | None
    """Served-to-expected ratio of the challenger's requests to the champion's (1: the split is right)."""
    lower_bound: float | None
    upper_bound: float | None
    tolerance: float
    mismatch: bool

    def describe(self) -> str:
        observed = "none" if self.observed_share is None else f"{100 * self.observed_share:.2f} %"
        interval = f"[{_fmt(self.lower_bound)}, {_fmt(self.upper_bound)}]"
        bounds = f"; served/expected ratio {self.ratio:.3g} in {interval}" if self.ratio is not None else ""
        return (
            f"challenger expected {100 * self.expected_share:.2f} % of requests, observed {observed} "
            f"({self.challenger_requests} of {self.champion_requests + self.challenger_requests} over "
            f"{self.windows} min){bounds}, tolerance {self.tolerance:.3g}"
        )

    def reason(self) -> str:
        return f"{SAMPLE_RATIO_MISMATCH}: {self.describe()}"


def _fmt(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.3g}"


def check_sample_ratio(
    windows: RolloutWindows,
    *,
    expected_share: float,
    step_started_at: int,
    settings: JudgeSettings,
    bounds: bool = True,
) -> SampleRatioEvidence | None:
    """Check the step's windows against the challenger's expected share; None when there is no split to
    check (a share of 0 or 1, or no settled window with requests yet).

    ``bounds=False`` skips the ratio's confidence bounds (bisection); the decision is the same.
    """
    if not 0.0 < expected_share < 1.0:
        return None
    # Windows without their start times are taken as settled (the caller gave the step's windows).
    settle = settings.sample_ratio_settle_seconds
    starts = windows.period_starts or (step_started_at + settle,) * len(windows.champion)
    settled = [
        (champion.requests, challenger.requests)
        for champion, challenger, start in zip(windows.champion, windows.challenger, starts, strict=True)
        if start >= step_started_at + settle and champion.requests + challenger.requests > 0
    ]
    if not settled:
        return None
    expected_odds = expected_share / (1.0 - expected_share)
    data = RateRatioData(
        challenger_events=sum(x for _, x in settled),
        totals_and_exposure_ratios=tuple((c + x, expected_odds) for c, x in settled),
        challenger_events_per_window=tuple(x for _, x in settled),
    )
    ratio = rate_ratio_estimate(data)
    # Window-to-window wobble beyond binomial (bursts of one user's requests) weakens the test, as it
    # does the error test; a steady shortfall, which is what a mismatch is, does not.
    data = data.with_dispersion(rate_ratio_dispersion(data, ratio))
    side_alpha = settings.sample_ratio_alpha / 2
    threshold = math.log(1.0 / side_alpha)
    high, low = 1.0 + settings.sample_ratio_tolerance, 1.0 / (1.0 + settings.sample_ratio_tolerance)
    mismatch = (
        rate_ratio_log_e_value(data, high, "greater") >= threshold
        or rate_ratio_log_e_value(data, low, "less") >= threshold
    )
    champion_requests = sum(c for c, _ in settled)
    challenger_requests = data.challenger_events
    lower = upper = None
    if bounds or mismatch:
        lower = rate_ratio_lower_bound(data, side_alpha)
        upper = rate_ratio_upper_bound(data, side_alpha)
    total = champion_requests + challenger_requests
    return SampleRatioEvidence(
        expected_share=expected_share,
        observed_share=challenger_requests / total,
        champion_requests=champion_requests,
        challenger_requests=challenger_requests,
        windows=len(settled),
        ratio=ratio,
        lower_bound=lower,
        upper_bound=upper,
        tolerance=settings.sample_ratio_tolerance,
        mismatch=mismatch,
    )
