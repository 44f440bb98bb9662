"""Gate the evaluated model and register it in the family's package group.

The evaluation report (``evaluation.json`` beside ``model.tar.gz``) must parse, its data version must be
the manifest's, and the gate must pass; otherwise nothing is registered and the task fails with the
reason. A passed model is registered Approved when the environment auto-approves (the approval rule then
starts its rollout, as a person's approval would), else PendingManualApproval for a person to approve.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from lambdas.retraining.aws.wiring import RetrainingServices
from lambdas.retraining.evaluation import EvaluationReport
from lambdas.retraining.gate import GateFailed, judge_report
from lambdas.retraining.jobs import layout, training_job_of
from lambdas.retraining.registration import registration_request
from lambdas.retraining.state import Registration, RetrainingState
from lambdas.shared.validation import describe_problems

logger = Logger()
metrics = Metrics()


class InvalidEvaluation(ValueError):
    """The evaluation job's outputs are unreadable or disagree with each other."""


def read_report(services: RetrainingServices, uri: str) -> EvaluationReport:
    try:
        return EvaluationReport.model_validate(services.read_json(uri))
    except ValidationError as error:
        problems = describe_problems(error)
        raise InvalidEvaluation(f"{uri} is not an evaluation report: {problems}") from None


def register(state: RetrainingState, services: RetrainingServices) -> RetrainingState:
    settings = services.settings
    family = settings.family(state.model_family)
    services.hold_lock(state)
    trained = training_job_of(state)
    where = layout(state, settings)
    report = read_report(services, where.evaluation_report(trained))
    manifest_url = where.data_manifest(trained)
    manifest = services.read_json(manifest_url)
    if not isinstance(manifest, dict) or manifest.get("data_version") != report.data_version:
        found = manifest.get("data_version") if isinstance(manifest, dict) else type(manifest).__name__
        raise InvalidEvaluation(
            f"{manifest_url} has data version {found!r}, the evaluation report {report.data_version!r}"
        )
    verdict = judge_report(report, family.gates)
    if not verdict.passed:
        metrics.add_metric(name="RetrainingGateFailed", unit=MetricUnit.Count, value=1)
        raise GateFailed(verdict.reason)
    approve = settings.auto_approve
    request = registration_request(
        state,
        report,
        family,
        model_data_url=state.model_data_url or where.model_archive(trained),
        evaluation_url=where.evaluation_report(trained),
        data_manifest_url=manifest_url,
        approve=approve,
    )
    created = services.sagemaker.create_model_package(**request)
    registration = Registration(
        model_package_arn=str(created["ModelPackageArn"]),
        approval_status=request["ModelApprovalStatus"],
        gate_reason=verdict.reason,
    )
    metrics.add_metric(name="RetrainingRegistered", unit=MetricUnit.Count, value=1)
    logger.info("model registered", extra=registration.model_dump())
    return state.model_copy(update={"registration": registration})
