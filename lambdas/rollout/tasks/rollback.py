"""Roll back: the champion takes all traffic at once, the candidate leaves, the package is Rejected.

A rollout the judge stopped for too little data takes the same path to restore the champion, but its
outcome is ``inconclusive``: the package goes back to PendingManualApproval (nothing was shown wrong with
it; approving it again once the plan fits the traffic starts a new rollout) and the notification says what
would fit.

Runs after a rollback verdict, failed gates, a failed or silently rolled back deployment, an abort
(alarm, kill switch, operator), or any task's failure (the Catch's ``error`` is the reason). The
endpoint is restored only if it runs one of this rollout's configs (gate, deploy, promote): failed
gates leave the candidate at weight 0 in the challenger slot, which the restoring config removes; an
update SageMaker undid itself, or a failure before the deploy, leaves nothing to restore. The
restoring update carries no DeploymentConfig, so the alarms that may have caused the rollback cannot undo it.

Two calls when there is something to restore: the first moves the weights to the champion at once and
sends the restoring update, the state machine waits for it and checks it, and the second (the endpoint
now runs the rollback config) records the outcome. The reason is kept in ``rollback_reason`` between
the two, since the check replaces the deployment status a reason may have come from.

An update in progress when the rollback begins (the promotion's, a blue/green deployment's, a late one
of a stopped execution) is waited for however long it lasts: the rollback returns with that update as
its deployment, the state machine waits and checks it, and calls again once it has ended, whatever it
left (the candidate promoted meanwhile is rolled back all the same). A restoring update that fails is
sent again, up to ``MAX_RESTORES`` times; then the rollback gives up: it records the outcome ``failed``,
rejects the package and tells a person, who removes the candidate's variant (its weight is 0 by then).
The rollback of an abort records its outcome only once a task of the stopped execution can no longer
land (``settle_until``), and looks at the endpoint again before it does.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from lambdas.rollout.aws.endpoint_ops import (
    IN_PROGRESS_STATUSES,
    config_name_for,
    create_endpoint_config,
    read_live_config,
    reject_package,
    resting_config_request,
    return_package_for_approval,
    set_weights,
    update_endpoint,
    update_endpoint_request,
)
from lambdas.rollout.aws.wiring import RolloutServices, busy_as_retryable
from lambdas.rollout.ledger import EntryKind, LedgerConflict, outcome_payload
from lambdas.rollout.payloads import OutcomeStatus, RolloutOutcome, Strategy
from lambdas.rollout.state import DeploymentStatus, EndpointBusy, RolloutState
from lambdas.rollout.tasks.ending import ended_summary, tell, write_report
from lambdas.rollout.traffic import step_weights

logger = Logger()

# A task that failed after writing its entries leaves them in place; the outcome goes after them.
MAX_RECORDED_BY_A_FAILED_TASK = 8
# Restoring updates sent before the rollback gives up: SageMaker failing the same config this often is
# no longer a transient fault.
MAX_RESTORES = 3


def rollback(state: RolloutState, services: RolloutServices) -> RolloutState:
    """Restore the champion if the endpoint runs this rollout's config, and return to wait for that
    update; once nothing is left to restore, record the outcome, reject the package and notify."""
    reason = state.failure_reason()
    state = state.model_copy(update={"rollback_reason": reason})
    services.hold_lock(state)
    updating = _update_in_progress(state, services)
    if updating is not None:
        logger.info("waiting for the endpoint's update to end", extra={"config": updating})
        return state.model_copy(
            update={"deployment": DeploymentStatus(status="updating", config_name=updating)}
        )
    if _runs_this_rollout(state, services):
        if state.restores >= MAX_RESTORES:
            return _give_up(state, services)
        return _restore_champion(state, services)
    if state.settle_until is not None and services.now() < state.settle_until:
        # A task of the stopped execution may still send its update: look again after a while.
        running = str(
            services.sagemaker.describe_endpoint(EndpointName=state.request.endpoint_name)[
                "EndpointConfigName"
            ]
        )
        logger.info("waiting for the stopped execution's tasks", extra={"until": state.settle_until})
        return state.model_copy(
            update={"deployment": DeploymentStatus(status="updating", config_name=running)}
        )
    request = state.request
    inconclusive = state.stopped_for_too_little_data()
    status = OutcomeStatus.INCONCLUSIVE if inconclusive else OutcomeStatus.ROLLED_BACK
    outcome = RolloutOutcome(
        status=status,
        endpoint_name=request.endpoint_name,
        model_package_arn=request.model_package_arn,
        reason=reason,
        steps=state.steps,
    )
    state = _record_outcome(state, services, outcome)
    entries = services.ledger.entries(state.rollout_id)
    report = write_report(state, services, entries)
    summary = ended_summary(entries, report)
    if inconclusive:
        return_package_for_approval(services.sagemaker, request.model_package_arn, summary, reason)
    else:
        reject_package(services.sagemaker, request.model_package_arn, summary, reason)
    tell(state, services, status=status, reason=reason, entries=entries, report=report)
    logger.warning(status.value.replace("_", " "), extra={"reason": reason})
    return state.model_copy(update={"outcome": status})


def _update_in_progress(state: RolloutState, services: RolloutServices) -> str | None:
    """The config an update in progress moves the endpoint to; None when the endpoint is not updating."""
    description = services.sagemaker.describe_endpoint(EndpointName=state.request.endpoint_name)
    if str(description.get("EndpointStatus", "")) not in IN_PROGRESS_STATUSES:
        return None
    pending = (description.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
    return str(pending or description.get("EndpointConfigName"))


def _runs_this_rollout(state: RolloutState, services: RolloutServices) -> bool:
    name = state.request.endpoint_name
    description = services.sagemaker.describe_endpoint(EndpointName=name)
    status = str(description.get("EndpointStatus", ""))
    if status in IN_PROGRESS_STATUSES:
        raise EndpointBusy(f"endpoint {name} is {status}; it is rolled back once the update has ended")
    ours = {config_name_for(name, state.rollout_id, purpose) for purpose in ("gate", "deploy", "promote")}
    return str(description.get("EndpointConfigName")) in ours


def _restore_champion(state: RolloutState, services: RolloutServices) -> RolloutState:
    request = state.request
    name = request.endpoint_name
    live = read_live_config(services.sagemaker, name)
    if request.strategy not in (Strategy.SHADOW, Strategy.BLUE_GREEN):
        # Weights apply in seconds; the config swap below takes minutes.
        with busy_as_retryable(name):
            set_weights(services.sagemaker, name, step_weights(0, request.variants), request.variants)
    champion_model = state.champion_model or str(live.variant(request.variants.champion)["ModelName"])
    config_name = config_name_for(name, state.rollout_id, "rollback")
    config = create_endpoint_config(
        services.sagemaker,
        resting_config_request(
            config_name,
            live,
            request.variants,
            champion_model=champion_model,
            shadow_slot=request.strategy is Strategy.SHADOW,
        ),
    )
    with busy_as_retryable(name):
        update_endpoint(services.sagemaker, update_endpoint_request(name, config))
    logger.info("champion restored", extra={"model": champion_model, "config": config})
    return state.model_copy(
        update={
            "deployment": DeploymentStatus(status="updating", config_name=config),
            "restores": state.restores + 1,
        }
    )


def _give_up(state: RolloutState, services: RolloutServices) -> RolloutState:
    """SageMaker has failed every restoring update: the outcome `failed` recorded, the package rejected
    (it must not ship: it was being rolled back) and a person told. The weights were moved to the
    champion with the first restoring update; the candidate's variant stays in the config at 0 %."""
    request = state.request
    why = state.deployment.reason if state.deployment is not None else ""
    reason = (
        f"rolling back ({state.failure_reason()}) failed: endpoint {request.endpoint_name} still runs "
        f"rollout {state.rollout_id}'s config after {state.restores} restoring updates "
        f"({why or 'no reason given'})"
    )
    outcome = RolloutOutcome(
        status=OutcomeStatus.FAILED,
        endpoint_name=request.endpoint_name,
        model_package_arn=request.model_package_arn,
        reason=reason,
        steps=state.steps,
    )
    state = _record_outcome(state, services, outcome)
    entries = services.ledger.entries(state.rollout_id)
    report = write_report(state, services, entries)
    reject_package(services.sagemaker, request.model_package_arn, ended_summary(entries, report), reason)
    # The endpoint needs a person: its candidate variant is at 0 %, to be removed with a config that keeps
    # the champion alone (the notification's next steps say so).
    tell(state, services, status=OutcomeStatus.FAILED, reason=reason, entries=entries, report=report)
    logger.error("rollback failed", extra={"reason": reason})
    return state.model_copy(update={"outcome": OutcomeStatus.FAILED})


def _record_outcome(state: RolloutState, services: RolloutServices, outcome: RolloutOutcome) -> RolloutState:
    for _ in range(MAX_RECORDED_BY_A_FAILED_TASK):
        try:
            return services.record(state, EntryKind.OUTCOME, outcome_payload(outcome))
        except LedgerConflict:
            state = state.model_copy(update={"sequence": state.sequence + 1})
    raise LedgerConflict(f"rollout {state.rollout_id}: no free ledger sequence for the rollback's outcome")
