"""Promote: the candidate's model becomes the champion, the outcome is recorded, the package is Approved.

Two calls: the first sends the endpoint its resting config with the candidate as the champion (for
blue_green that config is already running: nothing is sent, and the second part follows at once); the
state machine waits for that update and checks it, and a second call, seeing the promote config in
service, records the outcome and approves the package with the ledger's summary. A promotion update
that fails goes to the rollback path instead: nothing was approved yet.

In an environment with a next one (``release_to``), the approved package is then offered to it on
EventBridge with its metadata (``lambdas.release.offer``). The promotion stands whatever becomes of the
offer: one that cannot be sent is told on the topic with the package to offer by hand.
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas.release.offer import ReleaseOffer, offer_entry, package_container
from lambdas.rollout.aws.endpoint_ops import (
    approve_package,
    config_name_for,
    create_endpoint_config,
    read_live_config,
    resting_config_request,
    update_endpoint,
    update_endpoint_request,
)
from lambdas.rollout.aws.wiring import RolloutServices, busy_as_retryable
from lambdas.rollout.ledger import EntryKind, outcome_payload
from lambdas.rollout.payloads import OutcomeStatus, RolloutOutcome
from lambdas.rollout.state import DeploymentStatus, RolloutState
from lambdas.rollout.tasks.ending import ended_summary, tell, write_report
from lambdas.shared.aws_clients import THROTTLING_CODES

logger = Logger()


def promote(state: RolloutState, services: RolloutServices) -> RolloutState:
    """Send the endpoint its resting config with the candidate as champion; once that update has ended
    in service (the state machine waits and checks, then calls again), record and approve."""
    if state.challenger_model is None:
        raise ValueError(f"rollout {state.rollout_id} has no deployed candidate to promote")
    services.hold_lock(state)
    request = state.request
    name = config_name_for(request.endpoint_name, state.rollout_id, "promote")
    deployment = state.deployment
    if deployment is None or deployment.config_name != name or deployment.status != "in_service":
        live = read_live_config(services.sagemaker, request.endpoint_name)
        resting = resting_config_request(name, live, request.variants, champion_model=state.challenger_model)
        config = create_endpoint_config(services.sagemaker, resting)
        with busy_as_retryable(request.endpoint_name):
            sent = update_endpoint(services.sagemaker, update_endpoint_request(request.endpoint_name, config))
        if sent or live.name != config:
            logger.info("promotion update sent", extra={"model": state.challenger_model, "config": config})
            return state.model_copy(
                update={"deployment": DeploymentStatus(status="updating", config_name=config)}
            )
        # blue_green: SageMaker's guardrails already run this config; nothing to wait for.
    return _record_promotion(state, services, name)


def _record_promotion(state: RolloutState, services: RolloutServices, config: str) -> RolloutState:
    request = state.request
    reason = state.decision.reason if state.decision else "deployment guardrails passed"
    outcome = RolloutOutcome(
        status=OutcomeStatus.PROMOTED,
        endpoint_name=request.endpoint_name,
        model_package_arn=request.model_package_arn,
        reason=reason,
        steps=state.steps,
    )
    state = services.record(state, EntryKind.OUTCOME, outcome_payload(outcome))
    entries = services.ledger.entries(state.rollout_id)
    report = write_report(state, services, entries)
    approve_package(
        services.sagemaker,
        request.model_package_arn,
        ended_summary(entries, report),
        f"promoted by rollout {state.rollout_id}: {reason}",
    )
    tell(state, services, status=OutcomeStatus.PROMOTED, reason=reason, entries=entries, report=report)
    logger.info("promoted", extra={"model": state.challenger_model, "config": config, "reason": reason})
    if services.settings.release_to is not None:
        offer_to_next_environment(state, services, services.settings.release_to)
    return state.model_copy(
        update={
            "deployment": DeploymentStatus(status="in_service", config_name=config),
            "outcome": OutcomeStatus.PROMOTED,
        }
    )


class OfferNotSent(Exception):
    """EventBridge did not take the offer."""


def offer_to_next_environment(state: RolloutState, services: RolloutServices, target: str) -> None:
    """Put the promoted package, its container and its metadata on the bus for the next environment;
    a failure is told on the topic (throttling is retried by the state machine with the whole task)."""
    request = state.request
    settings = services.settings
    try:
        described = services.sagemaker.describe_model_package(ModelPackageName=request.model_package_arn)
        image, model_data_url = package_container(described)
        offer = ReleaseOffer(
            source_environment=settings.environment or "-",
            target_environment=target,
            endpoint=state.endpoint,
            model_package_arn=request.model_package_arn,
            image=image,
            model_data_url=model_data_url,
            rollout_id=state.rollout_id,
            metadata=dict(described.get("CustomerMetadataProperties") or {}),
        )
        if services.events is None:
            raise OfferNotSent("this function has no EventBridge client")
        answer = services.events.put_events(Entries=[offer_entry(offer)])
        if answer.get("FailedEntryCount"):
            raise OfferNotSent(json.dumps(answer.get("Entries"), default=str))
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in THROTTLING_CODES:
            raise
        _tell_offer_failed(state, services, target, str(error))
    except (ValueError, OfferNotSent) as error:
        _tell_offer_failed(state, services, target, str(error))
    else:
        logger.info("offered to the next environment", extra={"target": target, "rollout": state.rollout_id})


def _tell_offer_failed(state: RolloutState, services: RolloutServices, target: str, reason: str) -> None:
    request = state.request
    message = {
        "event": "release_not_offered",
        "endpoint": state.endpoint,
        "model_package_arn": request.model_package_arn,
        "rollout_id": state.rollout_id,
        "next_environment": target,
        "reason": reason,
        "action": f"the package stays promoted here; offer it to {target} by hand (docs/release-chain.md)",
    }
    services.sns.publish(
        TopicArn=services.settings.topic_arn,
        Subject=f"mlrollout: {state.endpoint} not offered to {target}"[:100],
        Message=json.dumps(message, indent=2),
    )
    logger.error("release offer not sent", extra={"target": target, "reason": reason})
