"""What a rollout's end tells people on the environment's topic: what happened, the numbers behind it,
what to do next (the `mlrollout` commands) and where to look (the report, the consoles).

The message stays one JSON document (subscribers parse it; an e-mail shows it as is), its first field a
sentence a person reads first. Pure: the ledger's entries in, the subject and message out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import JsonValue

from lambdas.rollout.ledger import EntryKind, LedgerEntry
from lambdas.rollout.payloads import OutcomeStatus
from lambdas.rollout.sample_ratio import SAMPLE_RATIO_MISMATCH

__all__ = ["SUBJECT_MAX", "Notice", "console_links", "outcome_notice"]

SUBJECT_MAX = 100
"""SNS refuses a longer subject."""

_HEADLINES = {
    OutcomeStatus.PROMOTED: "promoted",
    OutcomeStatus.ROLLED_BACK: "rolled back",
    OutcomeStatus.INCONCLUSIVE: "inconclusive: too little data",
    OutcomeStatus.FAILED: "rollback FAILED",
}
_EVENTS = {
    OutcomeStatus.PROMOTED: "rollout_promoted",
    OutcomeStatus.ROLLED_BACK: "rollout_rolled_back",
    OutcomeStatus.INCONCLUSIVE: "rollout_inconclusive",
    OutcomeStatus.FAILED: "rollout_rollback_failed",
}


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    message: dict[str, JsonValue]


def console_links(region: str, endpoint_name: str, rollout_id: str) -> dict[str, str]:
    """The SageMaker endpoint's and the Step Functions execution's pages in the AWS console."""
    console = f"https://{region}.console.aws.amazon.com"
    return {
        "endpoint": f"{console}/sagemaker/home?region={region}#/endpoints/{quote(endpoint_name, safe='')}",
        "execution": f"{console}/states/home?region={region}#/v2/executions/details/{rollout_id}",
    }


def _execution_name(rollout_id: str) -> str:
    return rollout_id.rsplit(":", 1)[-1]


def _numbers(entries: Sequence[LedgerEntry]) -> dict[str, JsonValue]:
    """The share reached, the requests each variant served, and the last look's evidence."""
    served = {"champion": 0, "challenger": 0}
    reached = 0
    last_verdict: dict[str, JsonValue] | None = None
    for entry in entries:
        payload = entry.payload
        if entry.kind is EntryKind.TRAFFIC_STEP:
            served["champion"] += int(str(payload.get("champion_requests", 0)))
            served["challenger"] += int(str(payload.get("challenger_requests", 0)))
        elif entry.kind is EntryKind.DEPLOYMENT and payload.get("action") == "set_weights":
            reached = max(reached, int(str(payload.get("challenger_percent", 0))))
        elif entry.kind is EntryKind.JUDGE_VERDICT:
            last_verdict = payload
    numbers: dict[str, JsonValue] = {
        "highest_challenger_percent": reached,
        "requests_served": dict(served),
    }
    if last_verdict is not None:
        numbers["last_look"] = {
            "challenger_percent": last_verdict.get("challenger_percent"),
            "verdict": last_verdict.get("verdict"),
            "metrics": [_metric_line(item) for item in _list(last_verdict.get("evidence"))],
        }
        sample_ratio = last_verdict.get("sample_ratio")
        if isinstance(sample_ratio, dict):
            numbers["sample_ratio"] = {
                key: sample_ratio.get(key)
                for key in ("expected_share", "observed_share", "ratio", "lower_bound", "upper_bound")
            }
    return numbers


def _list(value: JsonValue) -> list[Any]:
    return value if isinstance(value, list) else []


def _metric_line(item: Any) -> str:
    """One metric as a person reads it: estimate, bounds, harm threshold and margin."""
    if not isinstance(item, dict):
        return str(item)

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{float(value):.4g}"

    return (
        f"{item.get('metric')}: {item.get('outcome')}, estimate {fmt(item.get('estimate'))} in "
        f"[{fmt(item.get('lower_bound'))}, {fmt(item.get('upper_bound'))}], harm above "
        f"{fmt(item.get('harm_threshold'))}, non-inferior below {fmt(item.get('promote_threshold'))}"
    )


def _action(status: OutcomeStatus, reason: str) -> str:
    """What a person does about it, in a sentence."""
    if status is OutcomeStatus.PROMOTED:
        return "nothing to do: the new champion serves all traffic; the report shows the evidence"
    if status is OutcomeStatus.INCONCLUSIVE:
        return (
            "the champion serves all traffic again and nothing was shown wrong with the model; the package "
            "waits for approval: change the plan as the reason says (longer bakes, a bigger first step, "
            "fewer judge metrics), then approve the package again to roll it out"
        )
    if status is OutcomeStatus.FAILED:
        return (
            "the endpoint needs a person: its candidate variant is at 0 %; remove it with an endpoint config "
            "that keeps the champion alone"
        )
    if reason.startswith(SAMPLE_RATIO_MISMATCH):
        return (
            "the champion serves all traffic again; the split did not follow the weights, so the metrics "
            "compared biased samples: check that the challenger answers and counts every request it is sent "
            "(drops, redirects, errors before they are counted) and the router's pins, then roll out again"
        )
    return (
        "the champion serves all traffic again; the package is rejected: fix the model and register a new "
        "version"
    )


def _next_steps(status: OutcomeStatus, reason: str, endpoint: str, package: str, name: str) -> list[str]:
    report = f"mlrollout report {name} --html {name}.html   # the rollout's page, from its ledger"
    show = f"mlrollout show {name}   # every entry of its ledger"
    if status is OutcomeStatus.PROMOTED:
        return [f"mlrollout status {endpoint}   # the new champion serves all traffic", report]
    if status is OutcomeStatus.INCONCLUSIVE:
        return [
            "change the plan as the reason says (longer bakes, a bigger first step, fewer judge metrics)",
            f"mlrollout start {endpoint} {package} --bake-minutes N   # roll the same package out again",
            report,
        ]
    if status is OutcomeStatus.FAILED:
        return [
            f"mlrollout status {endpoint}   # which config the endpoint runs",
            "restore the champion alone with an endpoint config that keeps it, then check the weights",
            show,
        ]
    if reason.startswith(SAMPLE_RATIO_MISMATCH):
        again = f"mlrollout start {endpoint} {package}   # the same package, once the split is fixed"
        return [report, show, again]
    return [report, show, f"mlrollout history {endpoint}   # the endpoint's past rollouts"]


def outcome_notice(
    *,
    status: OutcomeStatus,
    endpoint: str,
    endpoint_name: str,
    model_package_arn: str,
    rollout_id: str,
    reason: str,
    region: str,
    entries: Sequence[LedgerEntry],
    report_uri: str | None = None,
    report_console_url: str | None = None,
) -> Notice:
    headline = _HEADLINES[status]
    name = _execution_name(rollout_id)
    package_version = model_package_arn.rsplit("/", 1)[-1]
    summary = f"{endpoint}: package version {package_version} {headline}: {reason}"
    links: dict[str, JsonValue] = dict(console_links(region, endpoint_name, rollout_id))
    if report_uri is not None:
        links["report"] = report_uri
    if report_console_url is not None:
        links["report_console"] = report_console_url
    message: dict[str, JsonValue] = {
        "summary": summary,
        "event": _EVENTS[status],
        "endpoint": endpoint,
        "endpoint_name": endpoint_name,
        "model_package_arn": model_package_arn,
        "rollout_id": rollout_id,
        "reason": reason,
        "action": _action(status, reason),
        "numbers": _numbers(entries),
        "next_steps": list(_next_steps(status, reason, endpoint, model_package_arn, name)),
        "links": links,
    }
    if report_uri is None:
        message["report"] = "not written (see the function's log); mlrollout report renders it"
    subject = f"mlrollout: {endpoint} v{package_version} {headline}"
    if reason.startswith(SAMPLE_RATIO_MISMATCH):
        subject += f" ({SAMPLE_RATIO_MISMATCH})"
    return Notice(subject=subject[:SUBJECT_MAX], message=message)
