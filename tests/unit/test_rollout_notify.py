"""What a rollout's end tells people: what happened, the numbers, the next command, the links."""

from __future__ import annotations

from typing import Any

from lambdas.rollout.ledger import EntryKind, LedgerEntry
from lambdas.rollout.notify import SUBJECT_MAX, console_links, outcome_notice
from lambdas.rollout.payloads import OutcomeStatus
from lambdas.rollout.report import report_html
from tests.unit.test_cli_rollouts import JUDGED, entry, ledger

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:mlrollout-dev-rollout:run-7"
PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlrollout-dev-churn/7"
SRM_REASON = (
    "sample ratio mismatch: challenger expected 5.00 % of requests, observed 3.98 % (398 of 10000 over 9 min)"
)
SAMPLE_RATIO = {
    "expected_share": 0.05,
    "observed_share": 0.0398,
    "champion_requests": 9602,
    "challenger_requests": 398,
    "windows": 9,
    "ratio": 0.79,
    "lower_bound": 0.7,
    "upper_bound": 0.9,
    "tolerance": 0.05,
    "mismatch": True,
}


def mismatched() -> list[LedgerEntry]:
    entries = ledger()
    verdict = entries[-1]
    payload: dict[str, Any] = dict(verdict.payload) | {
        "action": "rollback",
        "action_reason": SRM_REASON,
        "sample_ratio": SAMPLE_RATIO,
    }
    entries[-1] = verdict.model_copy(update={"payload": payload})
    served = {"step": 0, "challenger_percent": 5, "champion_requests": 9602, "challenger_requests": 398}
    entries.append(entry(5, JUDGED, EntryKind.TRAFFIC_STEP, **served))
    entries.append(entry(6, JUDGED + 60, EntryKind.OUTCOME, status="rolled_back", reason=SRM_REASON))
    return entries


def notice(status: OutcomeStatus, reason: str, entries: list[LedgerEntry], **report: str) -> Any:
    return outcome_notice(
        status=status,
        endpoint="churn",
        endpoint_name="mlrollout-dev-churn",
        model_package_arn=PACKAGE,
        rollout_id=EXECUTION,
        reason=reason,
        region="eu-west-1",
        entries=entries,
        **report,
    )


def test_a_sample_ratio_rollback_says_what_happened_the_numbers_the_commands_and_the_links() -> None:
    told = notice(
        OutcomeStatus.ROLLED_BACK,
        SRM_REASON,
        mismatched(),
        report_uri="s3://registry/rollout-reports/churn/run-7.html",
        report_console_url="https://console/report",
    )
    assert told.subject == "mlrollout: churn v7 rolled back (sample ratio mismatch)"
    message = told.message
    assert message["summary"] == f"churn: package version 7 rolled back: {SRM_REASON}"
    assert message["event"] == "rollout_rolled_back" and message["reason"] == SRM_REASON
    assert "counts every request it is sent" in message["action"]
    numbers = message["numbers"]
    assert numbers["requests_served"] == {"champion": 9602, "challenger": 398}
    assert numbers["highest_challenger_percent"] == 5
    assert numbers["sample_ratio"]["expected_share"] == 0.05
    assert numbers["sample_ratio"]["observed_share"] == 0.0398
    assert numbers["last_look"]["metrics"][0] == (
        "errors: undecided, estimate 1.02 in [0.9, 1.2], harm above 1.1, non-inferior below 1.25"
    )
    assert (
        message["next_steps"][0]
        == "mlrollout report run-7 --html run-7.html   # the rollout's page, from its ledger"
    )
    assert f"mlrollout start churn {PACKAGE}" in message["next_steps"][2]
    links = message["links"]
    assert links["report"] == "s3://registry/rollout-reports/churn/run-7.html"
    assert links["endpoint"] == (
        "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/endpoints/mlrollout-dev-churn"
    )
    assert links["execution"].endswith(f"#/v2/executions/details/{EXECUTION}")


def test_an_inconclusive_rollout_says_how_to_change_the_plan() -> None:
    told = notice(OutcomeStatus.INCONCLUSIVE, "too little data at 5 % after 60 min", ledger())
    assert told.subject == "mlrollout: churn v7 inconclusive: too little data"
    assert "approve the package again" in told.message["action"]
    assert (
        told.message["next_steps"][1]
        == f"mlrollout start churn {PACKAGE} --bake-minutes N   # roll the same package out again"
    )
    assert told.message["report"].startswith("not written")
    assert "report" not in told.message["links"]


def test_a_promotion_and_a_failed_rollback_say_what_to_do() -> None:
    promoted = notice(OutcomeStatus.PROMOTED, "judge: non-inferior at 50 % after 10 min", ledger())
    assert promoted.subject == "mlrollout: churn v7 promoted"
    assert promoted.message["next_steps"][0].startswith("mlrollout status churn")
    failed = notice(OutcomeStatus.FAILED, "rolling back (judge: harm) failed", ledger())
    assert failed.subject == "mlrollout: churn v7 rollback FAILED"
    assert "needs a person" in failed.message["action"]


def test_a_long_endpoint_name_keeps_the_subject_within_sns_limits() -> None:
    told = outcome_notice(
        status=OutcomeStatus.ROLLED_BACK,
        endpoint="e" * 90,
        endpoint_name="x",
        model_package_arn=PACKAGE,
        rollout_id=EXECUTION,
        reason=SRM_REASON,
        region="us-east-1",
        entries=[],
    )
    assert len(told.subject) == SUBJECT_MAX


def test_console_links_name_the_region_endpoint_and_execution() -> None:
    links = console_links("us-west-2", "mlrollout-prod-churn", EXECUTION)
    assert links["endpoint"].startswith("https://us-west-2.console.aws.amazon.com/sagemaker/")
    assert links["execution"].startswith("https://us-west-2.console.aws.amazon.com/states/")


def test_the_report_shows_the_sample_ratio_look_by_look() -> None:
    page = report_html(mismatched())
    assert "<h2>Sample ratio look by look</h2>" in page
    assert (
        "<td>5.00 %</td><td>3.98 %</td><td>9602/398</td><td>0.79</td><td>0.7</td><td>0.9</td>"
        "<td>MISMATCH</td>" in page
    )
