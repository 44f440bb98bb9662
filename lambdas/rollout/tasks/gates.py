"""Pre-traffic gates: golden inputs, metric thresholds and input drift, before the candidate sees a request.

They run once the candidate is deployed in the challenger slot at weight 0 (the state machine checks
the update is in service first): the golden cases are sent to that variant with TargetVariant
(``lambdas/gates/aws/candidate.py``), so the gate judges what the endpoint will answer, not what the
package says it answered when it was evaluated.

Where the inputs are (beside the package's model artifact, ``s3://<bucket>/<dir>/model.tar.gz``):

* ``<dir>/gates/golden.json``          -- the golden cases (GoldenSet);
* ``<dir>/gates/metrics.json``         -- its held-out metrics (``{"accuracy": 0.91, ...}``);
* ``<dir>/gates/baseline.json``        -- the training baseline (TrainingBaseline).

(``golden_outputs.json``, the evaluation step's own answers, is not read: the candidate is asked.)

The champion's metrics come the same way from the package its model was created from (none when the
champion was not created from a package). Captured requests are the newest data-capture files of the
champion variant under the live endpoint config's capture destination; the numeric values of the
baseline's features are taken from each captured ``{"instances": [{feature: value, ...}]}`` request.
Before them, the guardrail alarms are read again: one in ALARM fails the gates (``guardrail_alarms``).
Every gate's result is recorded; ``gates.passed`` says whether the rollout may go on. Finding and reading
these inputs is shared with the drift monitor (``lambdas/gates/aws/inputs.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools import Logger

from lambdas.gates import (
    CapturedFeatures,
    GoldenSet,
    TrainingBaseline,
    evaluate_gates,
)
from lambdas.gates.aws.candidate import ask_candidate
from lambdas.gates.aws.inputs import (
    captured_features,
    captured_records,
    gates_folder_of_package,
    read_gate_json,
)
from lambdas.rollout.aws.guardrail_alarms import GuardrailAlarmsInAlarm, check_guardrail_alarms
from lambdas.rollout.aws.wiring import RolloutServices
from lambdas.rollout.ledger import EntryKind, gate_payload
from lambdas.rollout.state import GatesStatus, RolloutState

logger = Logger()


GUARDRAIL_GATE = "guardrail_alarms"


def run_gates(state: RolloutState, services: RolloutServices) -> RolloutState:
    deployment = state.deployment
    if state.challenger_model is None or deployment is None or deployment.status != "in_service":
        raise ValueError(
            f"rollout {state.rollout_id} runs its gates before its candidate is deployed in service at 0 %"
        )
    if services.runtime is None:
        raise ValueError("the gates need a SageMaker Runtime client to ask the candidate")
    services.hold_lock(state)
    raised = _guardrail_alarm_raised(state, services)
    if raised is not None:
        state = services.record(
            state, EntryKind.GATE_RESULT, gate_payload(GUARDRAIL_GATE, "failed", {"reason": raised})
        )
        return state.model_copy(update={"gates": GatesStatus(passed=False, reason=raised)})
    sagemaker, s3 = services.sagemaker, services.s3
    request = state.request
    candidate = gates_folder_of_package(
        sagemaker.describe_model_package(ModelPackageName=request.model_package_arn)
    )
    golden = GoldenSet.model_validate(read_gate_json(s3, candidate, "golden.json"))
    baseline = TrainingBaseline.model_validate(read_gate_json(s3, candidate, "baseline.json"))
    answers = ask_candidate(
        services.runtime,
        endpoint_name=request.endpoint_name,
        variant=request.variants.challenger,
        golden=golden,
    )
    report = evaluate_gates(
        settings=state.gate_settings,
        golden=golden,
        challenger_outputs=answers,
        candidate_metrics=read_gate_json(s3, candidate, "metrics.json"),
        champion_metrics=_champion_metrics(state, services),
        baseline=baseline,
        captured=_captured(state, services, baseline),
    )
    logger.info("gates evaluated", extra={"passed": report.passed, "reason": report.reason})
    for result in report.results():
        detail = result.model_dump(mode="json", exclude={"gate", "status"})
        state = services.record(
            state, EntryKind.GATE_RESULT, gate_payload(result.gate.value, result.status.value, detail)
        )
    return state.model_copy(update={"gates": GatesStatus(passed=report.passed, reason=report.reason)})


def _guardrail_alarm_raised(state: RolloutState, services: RolloutServices) -> str | None:
    """Why the rollout must not reach traffic: a guardrail alarm that went to ALARM after the start read it
    and before the start was recorded, when the abort could not find the rollout yet."""
    names = state.guardrails.alarm_names
    if not names:
        return None
    try:
        check_guardrail_alarms(services.guardrail_alarms(), names, endpoint=state.endpoint)
    except GuardrailAlarmsInAlarm as raised:
        return str(raised)
    return None


def _champion_metrics(state: RolloutState, services: RolloutServices) -> dict[str, float] | None:
    if state.champion_model is None:
        return None
    model = services.sagemaker.describe_model(ModelName=state.champion_model)
    containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
    packages = [str(c["ModelPackageName"]) for c in containers if c.get("ModelPackageName")]
    if not packages:
        return None  # the bootstrap model from the config: nothing registered to compare with
    folder = gates_folder_of_package(services.sagemaker.describe_model_package(ModelPackageName=packages[0]))
    metrics_of_champion: dict[str, float] = read_gate_json(services.s3, folder, "metrics.json")
    return metrics_of_champion


def _captured(state: RolloutState, services: RolloutServices, baseline: TrainingBaseline) -> CapturedFeatures:
    return captured_features(_captured_records(state, services), baseline)


def _captured_records(state: RolloutState, services: RolloutServices) -> Iterator[dict[str, Any]]:
    """The champion variant's newest captured records (lambdas/gates/aws/inputs.py)."""
    request = state.request
    return captured_records(
        services.sagemaker,
        services.s3,
        endpoint_name=request.endpoint_name,
        variant=request.variants.champion,
    )
