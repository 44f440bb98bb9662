"""`make demo`'s story as a test: staging and production (`localstaging` releasing into `local`) on the local
cloud, every act checked.

One run (10 minutes on a 2-core machine under heavy load from other jobs): v1 serves simulated users
through each environment's router; in staging v2 is gated and promoted step by step by the judge; the
promotion offers it to production, which registers it with staging's evidence and promotes it with its
own rollout; the slow v3 is rolled back for its cost at its first step; the kill switch sends every user
back to the champion within the router's flags cache and the abort rule rolls v4 back; neither reaches
production. `localcloud.demo.chain` itself raises when an act ends otherwise; this test checks the evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from infra.application import build_app
from infra.config import load_config
from infra.serving import FLAGS_TTL_SECONDS
from localcloud.demo import chain as chain_demo
from localcloud.demo import rollout as rollout_demo
from localcloud.demo.story import Story, lambda_log_path
from tests.infra.conftest import cdk_json_context

STAGING, PRODUCTION = chain_demo.STAGING, chain_demo.PRODUCTION


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Story, Path]:
    outdir = tmp_path_factory.mktemp("chain") / "cdk.out"
    app = App(outdir=str(outdir), context={**cdk_json_context(), "env": f"{STAGING},{PRODUCTION}"})
    build_app(app)
    app.synth()
    report = tmp_path_factory.mktemp("report") / "demo-report.html"
    return chain_demo.run(outdir, report), report


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
    steps = load_config(STAGING).rollout.traffic_steps
    assert v2["outcome"] == "promoted"
    assert v2["steps_percent"] == [float(step) for step in steps[:-1]]
    assert str(v2["reason"]).startswith("judge: non-inferior")
    gates = [text for _, version, kind, text in told.decisions if version == "v2" and kind == "gate"]
    assert sorted(gates) == ["golden_inputs: passed", "input_drift: passed", "metric_thresholds: passed"]


def test_an_operator_sees_the_rollout_with_mlrollout_status_watch_while_it_runs(
    story: tuple[Story, Path],
) -> None:
    told, _ = story
    assert told.operator_status_exit == 0, told.operator_status
    watched = told.operator_status
    # Two refreshes of the live rollout, read by the installed command from the local cloud.
    assert watched.count("weights") >= 2, watched
    assert "churn" in watched and "challenger" in watched, watched


def test_v2_promoted_in_staging_is_released_to_production_and_promoted_there_by_its_own_rollout(
    story: tuple[Story, Path],
) -> None:
    told, _ = story
    staged, produced = rollout(told, "v2"), rollout(told, chain_demo.in_production("v2"))
    assert produced["outcome"] == "promoted"
    assert str(produced["reason"]).startswith("judge: non-inferior")
    # Production's own rollout: its own gates and judged steps, after staging's promotion.
    steps = load_config(PRODUCTION).rollout.traffic_steps
    assert produced["steps_percent"] == [float(step) for step in steps[:-1]]
    assert float(str(produced["started"])) > float(str(staged["started"])) + float(str(staged["seconds"]))
    gates = [
        text
        for _, version, kind, text in told.decisions
        if version == chain_demo.in_production("v2") and kind == "gate"
    ]
    assert sorted(gates) == ["golden_inputs: passed", "input_drift: passed", "metric_thresholds: passed"]
    [released] = [
        text
        for _, version, kind, text in told.decisions
        if version == chain_demo.in_production("v2") and kind == "release"
    ]
    assert "staging's evidence: outcome promoted" in released
    assert set(told.released) == {"v2"}
    assert f"{PRODUCTION}-churn-classifier" in told.released["v2"]


def test_versions_rolled_back_in_staging_never_reach_production(story: tuple[Story, Path]) -> None:
    told, _ = story
    for version in ("v3", "v4"):
        assert rollout(told, version)["outcome"] == "rolled_back"
        assert version not in told.released
        assert not [r for r in told.rollouts if r["version"] == chain_demo.in_production(version)]


def test_slow_v3_is_rolled_back_for_its_cost_at_its_first_step_with_the_figures(
    story: tuple[Story, Path],
) -> None:
    told, _ = story
    v2, v3 = rollout(told, "v2"), rollout(told, "v3")
    config = load_config(STAGING)
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
    assert v4["steps_percent"] in ([], [float(load_config(STAGING).rollout.traffic_steps[0])])
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
    for version in ("v2", "v3", "v4", chain_demo.in_production("v2")):
        assert version in page
    # v3's outcome, and each verdict's cost figures.
    assert "cost: the challenger would cost $" in page
    assert "cost per 1,000 predictions $" in page
    assert lambda_log_path(report).stat().st_size > 0
