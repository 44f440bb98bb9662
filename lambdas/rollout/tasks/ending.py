"""What every end of a rollout does once its outcome is recorded: write its report to the registry's
bucket, link it from the package's metadata, and tell people on the environment's topic."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.reports import REPORT_ERRORS, ReportLink
from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.ledger import METADATA_KEY_PREFIX, LedgerEntry, metadata_value, summarize
from lambdas.rollout.notify import outcome_notice
from lambdas.rollout.payloads import OutcomeStatus
from lambdas.rollout.state import RolloutState

logger = Logger()

REPORT_METADATA_KEY = f"{METADATA_KEY_PREFIX}.report"


def write_report(
    state: RolloutState, services: RolloutServices, entries: Sequence[LedgerEntry]
) -> ReportLink | None:
    """The report written; None without a report bucket, or when S3 refused it (logged: the promotion or
    rollback goes on, and `mlrollout report` renders the same page from the ledger)."""
    if services.reports is None:
        return None
    try:
        return services.reports.write(state.endpoint, state.rollout_id, entries)
    except REPORT_ERRORS as error:
        logger.warning("rollout report not written", extra={"error": str(error)})
        return None


def ended_summary(entries: Sequence[LedgerEntry], report: ReportLink | None) -> dict[str, str]:
    """The package's metadata: the ledger's summary and the report's location."""
    summary = summarize(entries)
    if report is not None:
        summary[REPORT_METADATA_KEY] = metadata_value(report.uri)
    return summary


def tell(
    state: RolloutState,
    services: RolloutServices,
    *,
    status: OutcomeStatus,
    reason: str,
    entries: Sequence[LedgerEntry],
    report: ReportLink | None,
) -> None:
    request = state.request
    notice = outcome_notice(
        status=status,
        endpoint=state.endpoint,
        endpoint_name=request.endpoint_name,
        model_package_arn=request.model_package_arn,
        rollout_id=state.rollout_id,
        reason=reason,
        region=services.settings.region,
        entries=entries,
        report_uri=report.uri if report else None,
        report_console_url=report.console_url if report else None,
    )
    services.sns.publish(
        TopicArn=services.settings.topic_arn,
        Subject=notice.subject,
        Message=json.dumps(notice.message, indent=2),
    )
