"""The rollout workflow's names and limits, shared by its construct, its definition and its abort."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn

from infra.config import EnvironmentConfig
from infra.workflow_task import (
    WorkflowFunction,
    WorkflowFunctions,
)
from lambdas.rollout.payloads import RolloutRequest

HANDLER_MODULES = (
    "rollout_start",
    "rollout_gates",
    "rollout_deploy",
    "rollout_check_deployment",
    "rollout_set_traffic",
    "rollout_judge",
    "rollout_promote",
    "rollout_rollback",
    "rollout_release",
    "rollout_resume",
    "rollout_gate",
)
# Not a task of the state machine: the target of the abort rules, which stops and restarts it.
ABORT_MODULE = "rollout_abort"
# AppConfig's own extension that puts deployment events on the default bus.
APPCONFIG_EVENTS_EXTENSION = "AWS.AppConfig.DeploymentNotificationsToEventBridge"
# FAILED: a rollout whose release failed after recording its outcome has its lock released.
ABORTING_STATUSES = ["TIMED_OUT", "ABORTED", "FAILED"]
# The handlers' state always carries "outcome" (null until recorded); IsPresent alone is true for null.
OUTCOME_RECORDED = sfn.Condition.and_(
    sfn.Condition.is_present("$.outcome"), sfn.Condition.is_not_null("$.outcome")
)
# SageMaker refusing a change while the endpoint is still updating: retried longer than the transient
# errors every task retries (infra/workflow_task.py).
ENDPOINT_BUSY = "EndpointBusy"
# A task that ran out of time may have made its calls or not; every rollout task can be run again with
# the same input (its endpoint calls are skipped when done, its ledger entries written once).
TIMED_OUT = "Sandbox.Timedout"
ENDPOINT_LOCKED = "EndpointLocked"
ROLLED_BACK = "RolledBack"
REFUSED = "RolloutRefused"
# The Fail states that are ordinary ends, each told on its own path: Step Functions' ExecutionsFailed counts
# them with every genuine failure, so the failure alarm counts the other failed ends from the log.
ORDINARY_FAILED_ENDS = frozenset({ROLLED_BACK, ENDPOINT_LOCKED, REFUSED})
# A Fail state after a Catch shows the caught error's cause (the handler's message) in the console.
ERROR_CAUSE = "$.error.Cause"
# Where the rollback function's own failure goes: `error` keeps the reason it rolls back for.
ROLLBACK_ERROR = "$.rollback_error"
# The resume's answers that another try cannot change: nothing of the rollout was deployed, or the input
# is not an abort's.
NOT_RESUMABLE = ("RolloutNotResumable", "InvalidAbortTrigger")
# Where a telling task's own failure goes, beside the error it was to tell.
TELLING_ERROR = "$.telling_error"
# A task failing past its retries is tried once more after this pause (a throttled API, a function
# being redeployed); a second failure is told and ends the execution.
PAUSE_BEFORE_TRYING_AGAIN = Duration.minutes(5)
# SageMaker takes minutes to update an endpoint; asking once a minute costs nothing and reacts in time.
ENDPOINT_POLL = Duration.seconds(60)
# Creating instances and moving an endpoint config, twice at most (deploy and promote or roll back), plus
# every configured step baking as often as the judge may ask by default; beyond that a run is stuck, and
# its lease, no longer renewed, expires. A request that overrides the bakes upward may need a longer one.
DEPLOY_ALLOWANCE_MINUTES = 120
MAX_BAKES_PER_STEP: int = RolloutRequest.model_fields["max_bakes_per_step"].default


def workflow_timeout(config: EnvironmentConfig) -> Duration:
    """Long enough for the slowest endpoint's schedule (each endpoint may have its own), with a hold and
    each human gate waiting as long as they may."""
    rollouts = [config.rollout_for(endpoint) for endpoint in config.endpoints]
    bakes = max(
        len(r.traffic_steps) * r.bake_minutes * MAX_BAKES_PER_STEP
        + (1 + len(r.approval_before)) * r.policy.hold_timeout_minutes
        for r in rollouts
    )
    return Duration.minutes(DEPLOY_ALLOWANCE_MINUTES + bakes)


@dataclass(frozen=True)
class RolloutFunctions(WorkflowFunctions):
    """The workflow's step functions, one per handler module of HANDLER_MODULES, in its order."""

    start: WorkflowFunction
    gates: WorkflowFunction
    deploy: WorkflowFunction
    check_deployment: WorkflowFunction
    set_traffic: WorkflowFunction
    judge: WorkflowFunction
    promote: WorkflowFunction
    rollback: WorkflowFunction
    release: WorkflowFunction
    resume: WorkflowFunction
    gate: WorkflowFunction
