"""`make demo`'s story as a test: the local environment's stack on the local cloud, every act checked.

One run (about 3 minutes on 2 cores): v1 serves simulated users through the router; v2 is gated and
promoted step by step by the judge; the slow v3 is rolled back for its cost at its first step; the kill
switch sends every user back to the champion within the router's flags cache and the abort rule rolls v4
back. `localcloud.demo.rollout` itself raises when an act ends otherwise; this test checks the evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.config import load_config
from infra.serving import FLAGS_TTL_SECONDS
from localcloud.demo import rollout as rollout_demo
from localcloud.demo.story import Story, lambda_log_path
from tests.infra.conftest import shared_outdir


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Story, Path]:
    outdir = shared_outdir(tmp_path_factory, "local")
    report = tmp_path_factory.mktemp("report") / "demo-report.html"
    return rollout_demo.run(outdir, report), report


def rollout(story: Story, version: str) -> dict[str, object]:
    [record] = [record for record in story.rollouts if record["version"] == version]
    return record


def test_users_are_served_throughout_and_the_champion_never_alarms(
    story: tuple[Story, Path],
) -> None:
    told, _ = story
    assert told.samples, "the sampler recorded nothing"
    assert told.requests > 1000
    assert told.failed_requests == 0
    alarms = [text for _, _, kind, text in told.decisions if kind == "alarm"]
    assert not [text for text in alarms if "-champion-" in text and text.endswith("-> ALARM")]


def test_v2_is_promoted_step_by_step_by_the_judge(story: tuple[Story, Path]) -> None:
    told, _ = story
    v2 = rollout(told, "v2")
    steps = load_config("local").rollout.traffic_steps
    assert v2["outcome"] == "promoted"
    assert v2["steps_percent"] == [float(step) for step in steps[:-1]]
    assert str(v2["reason"]).startswith("judge: non-inferior")
    gates = [text for _, version, kind, text in told.decisions if version == "v2" and kind == "gate"]
    assert sorted(gates) == ["golden_inputs: passed", "input_drift: passed", "metric_thresholds: passed"]


def test_slow_v3_is_rolled_back_for_its_cost_at_its_first_step_with_the_figures(
    story: tuple[Story, Path],
) -> None:
    told, _ = story
    v2, v3 = rollout(told, "v2"), rollout(told, "v3")
    config = load_config("local")
    first_step = float(config.rollout.traffic_steps[0])
    tolerance = config.rollout.guardrails.max_cost_increase
    assert tolerance is not None
    assert v3["outcome"] == "rolled_back"
    # The cost guardrail needs the latency samples only, the judge's latency its windows too: cost first.
    assert str(v3["reason"]).startswith("cost: the challenger would cost $")
    assert v3["steps_percent"] == [first_step]
    cost: Any = v3["cost"]
    assert cost["over_tolerance"] is True
    assert cost["increase"] > tolerance
    # As accurate, far slower: the instances it would need at the champion's load follow its latency.
    ratio = cost["challenger_latency_ms"] / cost["champion_latency_ms"]
    assert ratio > 1 + tolerance
    assert cost["challenger_instances"] == pytest.approx(ratio * cost["champion_instances"], rel=1e-2)
    assert cost["challenger_cost_per_1000"] > cost["champion_cost_per_1000"] * (1 + tolerance)
    # v2, as fast as v1, is within the tolerance at its last look.
    v2_cost: Any = v2["cost"]
    assert v2_cost["over_tolerance"] is False
    # The blast radius: what v3's users saw of it, smaller than what a good version serves to be promoted.
    assert 0 < int(str(v3["challenger_requests"])) < int(str(v2["challenger_requests"]))


def test_kill_switch_sends_every_user_to_the_champion_within_the_flags_cache(
    story: tuple[Story, Path],
) -> None:
    told, _ = story
    v4 = rollout(told, "v4")
    assert v4["outcome"] == "rolled_back"
    assert "kill switch on" in str(v4["reason"])
    assert v4["steps_percent"] in ([], [float(load_config("local").rollout.traffic_steps[0])])
    # The switch took real traffic away: users had reached v4 before it was pulled.
    assert int(str(v4["challenger_requests"])) >= rollout_demo.KILL_SWITCH_AFTER_REQUESTS
    assert told.kill_switch_seconds is not None
    # From the flags deployment completing: the router's flags cache (AppConfigData's minimum poll
    # interval) and requests in flight on a busy 2-core machine.
    assert FLAGS_TTL_SECONDS == 15
    assert told.kill_switch_seconds <= FLAGS_TTL_SECONDS + 5


def test_report_has_the_plots_and_every_decision(story: tuple[Story, Path]) -> None:
    _, report = story
    page = report.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 3
    for version in ("v2", "v3", "v4"):
        assert version in page
    # v3's outcome, and each verdict's cost figures.
    assert "cost: the challenger would cost $" in page
    assert "cost per 1,000 predictions $" in page
    assert lambda_log_path(report).stat().st_size > 0
