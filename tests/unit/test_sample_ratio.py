"""The sample-ratio check: each variant's share of requests against the weights the rollout set."""

from __future__ import annotations

import numpy as np
import pytest

from lambdas.rollout.judge import JudgeSettings, RolloutWindows, VariantWindow
from lambdas.rollout.sample_ratio import SAMPLE_RATIO_MISMATCH, SETTLE_SECONDS, check_sample_ratio

SETTINGS = JudgeSettings()
STEP_START = 600


def minutes(champion: list[int], challenger: list[int]) -> RolloutWindows:
    """The step's minutes, the first one starting a settle period after the step's start."""
    return RolloutWindows(
        champion=tuple(VariantWindow(requests=n) for n in champion),
        challenger=tuple(VariantWindow(requests=n) for n in challenger),
        period_starts=tuple(STEP_START + SETTLE_SECONDS + 60 * m for m in range(len(champion))),
    )


def split(
    rng: np.random.Generator, share: float, count: int, rps: float, kept: float
) -> tuple[list[int], list[int]]:
    """Requests per minute split at `share`; the challenger keeps only `kept` of its own (the rest is
    lost before it is counted)."""
    totals = rng.poisson(rps * 60, size=count)
    challenger = rng.binomial(totals, share)
    counted = rng.binomial(challenger, kept)
    return list(totals - challenger), list(counted)


def first_alarm(champion: list[int], challenger: list[int], share: float) -> int | None:
    """The first look (1 = after the first minute) at which the check shows a mismatch."""
    for look in range(1, len(champion) + 1):
        evidence = check_sample_ratio(
            minutes(champion[:look], challenger[:look]),
            expected_share=share,
            step_started_at=STEP_START,
            settings=SETTINGS,
            bounds=False,
        )
        if evidence is not None and evidence.mismatch:
            return look
    return None


@pytest.mark.parametrize("share", [0.05, 0.25, 0.5])
def test_no_false_alarm_at_the_right_ratio_over_many_looks(share: float) -> None:
    rng = np.random.default_rng(20261205)
    alarms = [first_alarm(*split(rng, share, 60, 50.0, kept=1.0), share) for _ in range(40)]
    assert alarms.count(None) == len(alarms)


@pytest.mark.parametrize("share", [0.05, 0.25])
def test_a_challenger_dropping_a_fifth_of_its_requests_is_found(share: float) -> None:
    rng = np.random.default_rng(7)
    alarms = [first_alarm(*split(rng, share, 60, 50.0, kept=0.8), share) for _ in range(20)]
    assert None not in alarms
    assert max(a for a in alarms if a is not None) <= 30


def test_the_reason_gives_expected_and_observed_shares() -> None:
    evidence = check_sample_ratio(
        minutes([2850] * 10, [120] * 10), expected_share=0.05, step_started_at=STEP_START, settings=SETTINGS
    )
    assert evidence is not None and evidence.mismatch
    reason = evidence.reason()
    assert reason.startswith(f"{SAMPLE_RATIO_MISMATCH}: ")
    assert "expected 5.00 % of requests, observed 4.04 %" in reason
    assert evidence.upper_bound is not None and evidence.upper_bound < 1.0


def test_a_challenger_serving_more_than_its_share_is_a_mismatch_too() -> None:
    evidence = check_sample_ratio(
        minutes([2700] * 10, [300] * 10), expected_share=0.05, step_started_at=STEP_START, settings=SETTINGS
    )
    assert evidence is not None and evidence.mismatch
    assert evidence.lower_bound is not None and evidence.lower_bound > 1.0


def test_a_shortfall_within_the_tolerance_is_not_a_mismatch() -> None:
    # 2 % fewer requests than the weights give, over many minutes: within the 5 % tolerance.
    evidence = check_sample_ratio(
        minutes([28530] * 60, [1470] * 60), expected_share=0.05, step_started_at=STEP_START, settings=SETTINGS
    )
    assert evidence is not None and not evidence.mismatch


def test_the_minute_the_weights_changed_in_is_left_out() -> None:
    # The first minute still ran at the earlier step's split (no challenger traffic at all).
    windows = RolloutWindows(
        champion=(VariantWindow(requests=3000), VariantWindow(requests=2850)),
        challenger=(VariantWindow(requests=0), VariantWindow(requests=150)),
        period_starts=(STEP_START, STEP_START + SETTLE_SECONDS),
    )
    evidence = check_sample_ratio(windows, expected_share=0.05, step_started_at=STEP_START, settings=SETTINGS)
    assert evidence is not None and not evidence.mismatch
    assert evidence.windows == 1 and evidence.challenger_requests == 150


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_no_split_to_check_when_one_variant_has_all_the_weight(share: float) -> None:
    windows = minutes([3000] * 5, [0] * 5)
    assert (
        check_sample_ratio(windows, expected_share=share, step_started_at=STEP_START, settings=SETTINGS)
        is None
    )


def test_no_requests_yet_is_no_evidence() -> None:
    windows = minutes([0] * 3, [0] * 3)
    assert (
        check_sample_ratio(windows, expected_share=0.05, step_started_at=STEP_START, settings=SETTINGS)
        is None
    )


def test_a_longer_settle_leaves_more_of_the_step_out() -> None:
    # Routers that cache the weights longer: the step's first minutes ran at the earlier split.
    windows = minutes([3000] * 3 + [2850] * 3, [0] * 3 + [150] * 3)
    settle = JudgeSettings(sample_ratio_settle_seconds=SETTLE_SECONDS + 180)
    evidence = check_sample_ratio(windows, expected_share=0.05, step_started_at=STEP_START, settings=settle)
    assert evidence is not None and not evidence.mismatch
    assert evidence.windows == 3 and evidence.challenger_requests == 450
    unsettled = check_sample_ratio(
        windows, expected_share=0.05, step_started_at=STEP_START, settings=SETTINGS
    )
    assert unsettled is not None and unsettled.mismatch
