"""Properties that must hold for any input the judge can be given."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.rollout.judge import (
    JudgeSettings,
    LatencyStats,
    Metric,
    RolloutWindows,
    VariantWindow,
    Verdict,
    judge,
)

PROPERTY_SETTINGS = settings(max_examples=120, deadline=None)

# From worst to best for the challenger: a verdict with a lower rank is "further from promote".
RANK = {Verdict.ROLLBACK: 0, Verdict.INCONCLUSIVE: 1, Verdict.CONTINUE: 2, Verdict.PROMOTE: 3}


@st.composite
def latency_stats(draw: st.DrawFn, sample_count: int) -> LatencyStats | None:
    # Some windows have no latency datapoint (about one in eight).
    if sample_count == 0 or draw(st.integers(min_value=0, max_value=7)) == 0:
        return None
    p50 = draw(st.floats(min_value=1.0, max_value=500.0))
    p90 = p50 * draw(st.floats(min_value=1.0, max_value=4.0))
    p99 = p90 * draw(st.floats(min_value=1.0, max_value=4.0))
    average = p50 * draw(st.floats(min_value=0.8, max_value=2.0))
    return LatencyStats(sample_count=sample_count, average=average, p50=p50, p90=p90, p99=p99)


@st.composite
def variant_windows(draw: st.DrawFn) -> VariantWindow:
    requests = draw(st.integers(min_value=0, max_value=20_000))
    errors = draw(st.integers(min_value=0, max_value=min(requests, requests // 20 + 5)))
    trials = draw(st.integers(min_value=0, max_value=requests))
    return VariantWindow(
        requests=requests,
        errors_5xx=errors,
        model_errors=draw(st.integers(min_value=0, max_value=requests - errors)),
        latency=draw(latency_stats(requests)),
        outcome_trials=trials,
        outcome_successes=draw(st.integers(min_value=0, max_value=trials)),
    )


@st.composite
def rollouts(draw: st.DrawFn) -> RolloutWindows:
    count = draw(st.integers(min_value=0, max_value=12))
    return RolloutWindows(
        champion=tuple(draw(variant_windows()) for _ in range(count)),
        challenger=tuple(draw(variant_windows()) for _ in range(count)),
    )


judge_settings = st.builds(
    JudgeSettings,
    metrics=st.permutations(list(Metric)).flatmap(lambda ms: st.integers(1, 3).map(lambda n: tuple(ms[:n]))),
    error_tolerance=st.sampled_from([0.0, 0.1, 0.5]),
    latency_tolerance=st.sampled_from([0.0, 0.05]),
    conversion_tolerance=st.sampled_from([0.0, 0.005]),
    min_requests=st.sampled_from([1, 500, 1000]),
    min_latency_windows=st.sampled_from([2, 6]),
    min_trials=st.sampled_from([1, 1000]),
)


@PROPERTY_SETTINGS
@given(champion=st.lists(variant_windows(), max_size=12), config=judge_settings)
def test_identical_champion_and_challenger_never_roll_back(
    champion: list[VariantWindow], config: JudgeSettings
) -> None:
    windows = RolloutWindows(champion=tuple(champion), challenger=tuple(champion))
    assert judge(windows, config).verdict is not Verdict.ROLLBACK


@PROPERTY_SETTINGS
@given(windows=rollouts(), config=judge_settings, data=st.data())
def test_more_challenger_errors_never_move_the_verdict_toward_promote(
    windows: RolloutWindows, config: JudgeSettings, data: st.DataObject
) -> None:
    worse = tuple(
        w.model_copy(
            update={"errors_5xx": w.errors_5xx + data.draw(st.integers(0, w.requests - w.failed_requests))}
        )
        for w in windows.challenger
    )
    before = judge(windows, config).verdict
    after = judge(RolloutWindows(champion=windows.champion, challenger=worse), config).verdict
    assert RANK[after] <= RANK[before]


@PROPERTY_SETTINGS
@given(windows=rollouts(), config=judge_settings, factor=st.floats(min_value=1.01, max_value=3.0))
def test_a_slower_challenger_never_moves_the_verdict_toward_promote(
    windows: RolloutWindows, config: JudgeSettings, factor: float
) -> None:
    def slower(w: VariantWindow) -> VariantWindow:
        if w.latency is None:
            return w
        stats = w.latency
        scaled = stats.model_copy(
            update={
                "average": stats.average * factor,
                "p50": stats.p50 * factor,
                "p90": stats.p90 * factor,
                "p99": stats.p99 * factor,
            }
        )
        return w.model_copy(update={"latency": scaled})

    before = judge(windows, config).verdict
    after = judge(
        RolloutWindows(champion=windows.champion, challenger=tuple(map(slower, windows.challenger))), config
    )
    assert RANK[after.verdict] <= RANK[before]


@PROPERTY_SETTINGS
@given(windows=rollouts(), config=judge_settings, data=st.data())
def test_fewer_challenger_conversions_never_move_the_verdict_toward_promote(
    windows: RolloutWindows, config: JudgeSettings, data: st.DataObject
) -> None:
    worse = tuple(
        w.model_copy(
            update={"outcome_successes": w.outcome_successes - data.draw(st.integers(0, w.outcome_successes))}
        )
        for w in windows.challenger
    )
    before = judge(windows, config).verdict
    after = judge(RolloutWindows(champion=windows.champion, challenger=worse), config).verdict
    assert RANK[after] <= RANK[before]


@PROPERTY_SETTINGS
@given(windows=rollouts(), config=judge_settings)
def test_same_input_gives_the_same_verdict_and_evidence(
    windows: RolloutWindows, config: JudgeSettings
) -> None:
    first = judge(windows, config)
    copied = RolloutWindows.model_validate_json(windows.model_dump_json())
    assert judge(windows, config) == first
    assert judge(copied, config).verdict is first.verdict


@PROPERTY_SETTINGS
@given(windows=rollouts(), config=judge_settings, seed=st.integers(0, 2**32))
def test_the_verdict_does_not_depend_on_the_order_of_the_windows(
    windows: RolloutWindows, config: JudgeSettings, seed: int
) -> None:
    order = list(range(len(windows.champion)))
    random.Random(seed).shuffle(order)
    shuffled = RolloutWindows(
        champion=tuple(windows.champion[i] for i in order),
        challenger=tuple(windows.challenger[i] for i in order),
    )
    assert judge(shuffled, config).verdict is judge(windows, config).verdict


@PROPERTY_SETTINGS
@given(windows=rollouts(), config=judge_settings)
def test_never_promotes_below_the_minimum_sample_guard(
    windows: RolloutWindows, config: JudgeSettings
) -> None:
    result = judge(windows, config)
    if result.verdict is Verdict.PROMOTE:
        for evidence in result.evidence:
            assert min(evidence.champion_samples, evidence.challenger_samples) >= 1
        if Metric.ERRORS in config.metrics:
            assert sum(w.requests for w in windows.challenger) >= config.min_requests
            assert sum(w.requests for w in windows.champion) >= config.min_requests
        if Metric.CONVERSION in config.metrics:
            assert sum(w.outcome_trials for w in windows.challenger) >= config.min_trials
        if Metric.LATENCY in config.metrics:
            paired = sum(
                c.latency is not None and x.latency is not None
                for c, x in zip(windows.champion, windows.challenger, strict=True)
            )
            assert paired >= config.min_latency_windows
