"""The rollout state machine's definition: the steps, the promotion and rollback paths, the resume.

Part of the workflow construct (infra/rollout_workflow.py), which builds its functions and tables first.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.notifications import Notifications
from infra.rollout_parts import (
    ENDPOINT_BUSY,
    ENDPOINT_LOCKED,
    ENDPOINT_POLL,
    ERROR_CAUSE,
    NOT_RESUMABLE,
    OUTCOME_RECORDED,
    PAUSE_BEFORE_TRYING_AGAIN,
    REFUSED,
    ROLLBACK_ERROR,
    ROLLED_BACK,
    TELLING_ERROR,
    TIMED_OUT,
    RolloutFunctions,
    workflow_timeout,
)
from infra.rollout_targets import RolloutTargets
from infra.state_machine import logged_state_machine
from infra.workflow_task import (
    NAMED_INPUT,
    START_PAYLOAD_PATH,
    WorkflowFunction,
)


class RolloutDefinition(Construct):
    """The definition's builders; `RolloutWorkflow` is the construct that has them."""

    # What the workflow construct sets before it builds the definition (infra/rollout_workflow.py).
    _config: EnvironmentConfig
    _notifications: Notifications
    functions: RolloutFunctions
    state_machine_name: str
    _targets: RolloutTargets

    # --- State machine ----------------------------------------------------------------------------------

    def _task(
        self, name: str, function: WorkflowFunction, payload: sfn.TaskInput | None = None
    ) -> tasks.LambdaInvoke:
        """The function's retrying task, which also waits out an endpoint that is being updated."""
        task = function.invoke(self, name, payload=payload)
        task.add_retry(
            errors=[TIMED_OUT],
            interval=Duration.seconds(5),
            max_attempts=3,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        # "Endpoint is being updated": SageMaker needs minutes, so wait longer and keep trying for ~45 min.
        task.add_retry(
            errors=[ENDPOINT_BUSY],
            interval=Duration.seconds(30),
            max_attempts=10,
            backoff_rate=1.5,
            max_delay=Duration.minutes(5),
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    def _state_machine(self) -> sfn.StateMachine:
        return logged_state_machine(
            self,
            name=self.state_machine_name,
            definition=self._definition(),
            timeout=workflow_timeout(self._config),
            comment=f"{self._config.prefix}: gates, traffic steps with bake and judge, promote or roll back",
        )

    def _rollback_path(self) -> tasks.LambdaInvoke:
        """Restore the champion, wait for that update, come back to record; release the lock either way.

        A rollback function failing past its retries is tried once more after a pause (its own error goes
        to `rollback_error`, so the reason it rolls back for is kept). A rollback that cannot restore the
        champion (SageMaker fails every restoring update) records the outcome `failed` itself, rejects the
        package and tells why. A rollback function that fails twice cannot restore anything: the workflow
        moves the traffic to the champion itself, and the release function tells why (or the workflow,
        if that fails too). Either ends in "Rollback failed", for a person."""
        rollback = self._task("Roll back to the champion", self.functions.rollback)
        pause = sfn.Wait(
            self, "Pause before rolling back again", time=sfn.WaitTime.duration(PAUSE_BEFORE_TRYING_AGAIN)
        )
        rollback_again = self._task("Roll back to the champion again", self.functions.rollback)
        check = self._task("Is the champion restored?", self.functions.check_deployment)
        released = self._task("Release the lock after the rollback", self.functions.release)
        released_anyway = self._task("Release the lock after a failed rollback", self.functions.release)
        rolled_back = sfn.Fail(
            self, "Rolled back", error=ROLLED_BACK, cause="The challenger was rolled back; see the ledger."
        )
        # Stopped for too little data: the champion is restored the same way, but nothing was shown wrong.
        too_little_data = sfn.Fail(
            self,
            "Too little data",
            error="Inconclusive",
            cause="Too little data to judge the challenger: the champion serves again and the package waits "
            "for approval; the notification and the ledger say what would fit.",
        )
        ended = (
            sfn.Choice(self, "Rolled back or too little data?")
            .when(sfn.Condition.string_equals("$.outcome", "inconclusive"), too_little_data)
            .otherwise(rolled_back)
        )
        needs_person = sfn.Fail(
            self,
            "Rollback failed",
            error="RollbackFailed",
            cause="The champion could not be restored: the topic and the ledger say why; the endpoint "
            "needs a person (docs/rollout-workflow.md, Failure modes).",
        )
        told_anyway = self._told_by_the_workflow(
            "Tell from the workflow that the rollback failed",
            event="rollout_rollback_failed",
            action="the endpoint needs a person: check which config it runs and restore the champion",
            reason=f"{ROLLBACK_ERROR}.Cause",
        )
        released.add_catch(
            sfn.Fail(
                self,
                "Rolled back, lock not released",
                error="LockNotReleased",
                cause_path=ERROR_CAUSE,
            ),
            errors=["States.ALL"],
            result_path="$.error",
        )
        released_anyway.add_catch(told_anyway, errors=["States.ALL"], result_path=TELLING_ERROR)
        told_anyway.add_catch(needs_person, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        told_anyway.next(needs_person)
        rollback.add_catch(pause, errors=["States.ALL"], result_path=ROLLBACK_ERROR)
        pause.next(rollback_again)
        traffic_back = self._traffic_to_the_champion()
        rollback_again.add_catch(traffic_back, errors=["States.ALL"], result_path=ROLLBACK_ERROR)
        traffic_back.add_catch(released_anyway, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        traffic_back.next(released_anyway)
        # A check that fails hands back to the rollback, which looks at the endpoint itself: an update
        # still running is waited for, a restored champion is recorded.
        check.add_catch(rollback, errors=["States.ALL"], result_path="$.error")
        wait = sfn.Wait(self, "Wait for the rollback", time=sfn.WaitTime.duration(ENDPOINT_POLL))
        recorded = (
            sfn.Choice(self, "Is the rollback recorded?")
            .when(sfn.Condition.string_equals("$.outcome", "failed"), released_anyway)
            .when(OUTCOME_RECORDED, released.next(ended))
            .otherwise(wait)
        )
        rollback.next(recorded)
        rollback_again.next(recorded)
        wait.next(check)
        # Whatever the update ended in, the rollback looks again: its own restoring update failed (it sends
        # it again, a few times), or another update it waited for has ended.
        check.next(
            sfn.Choice(self, "Is the champion back in service?")
            .when(sfn.Condition.string_equals("$.deployment.status", "in_service"), rollback)
            .when(sfn.Condition.string_equals("$.deployment.status", "failed"), rollback)
            .otherwise(wait)
        )
        released_anyway.next(needs_person)
        return rollback

    def _promotion_path(self, rollback: sfn.IChainable) -> tasks.LambdaInvoke:
        """Swap the endpoint to the candidate, wait for that update, come back to record and approve."""
        promote = self._task("Promote the challenger", self.functions.promote)
        check = self._task("Is the promotion done?", self.functions.check_deployment)
        release = self._task("Release the lock", self.functions.release)
        for task in (promote, check):
            task.add_catch(rollback, errors=["States.ALL"], result_path="$.error")
        release.add_catch(
            sfn.Fail(
                self,
                "Promoted, lock not released",
                error="LockNotReleased",
                cause_path=ERROR_CAUSE,
            ),
            errors=["States.ALL"],
            result_path="$.error",
        )
        wait = sfn.Wait(self, "Wait for the promotion", time=sfn.WaitTime.duration(ENDPOINT_POLL))
        promote.next(
            sfn.Choice(self, "Is the promotion recorded?")
            .when(OUTCOME_RECORDED, release.next(sfn.Succeed(self, "Promoted")))
            .otherwise(wait)
        )
        wait.next(check)
        check.next(
            sfn.Choice(self, "Is the candidate in service?")
            .when(sfn.Condition.string_equals("$.deployment.status", "in_service"), promote)
            .when(sfn.Condition.string_equals("$.deployment.status", "failed"), rollback)
            .otherwise(wait)
        )
        return promote

    def _traffic_to_the_champion(self) -> tasks.CallAwsService:
        """All traffic to the champion by Step Functions' own SageMaker call, when the rollback function
        has failed twice: users leave the candidate within seconds although nothing else can be done.
        Where there is no weighted challenger (shadow, blue/green) or the endpoint is being updated,
        SageMaker refuses it and the failed path goes on."""
        variants = "$.request.variants"
        call = tasks.CallAwsService(
            self,
            "Send all traffic to the champion, from the workflow",
            service="sagemaker",
            action="updateEndpointWeightsAndCapacities",
            parameters={
                "EndpointName": sfn.JsonPath.string_at("$.request.endpoint_name"),
                "DesiredWeightsAndCapacities": [
                    {"VariantName": sfn.JsonPath.string_at(f"{variants}.champion"), "DesiredWeight": 1},
                    {"VariantName": sfn.JsonPath.string_at(f"{variants}.challenger"), "DesiredWeight": 0},
                ],
            },
            iam_resources=self._targets.endpoints,
            iam_action="sagemaker:UpdateEndpointWeightsAndCapacities",
            result_path=sfn.JsonPath.DISCARD,
        )
        call.add_retry(
            errors=["States.ALL"],
            interval=Duration.seconds(10),
            max_attempts=3,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return call

    def _tell_not_started(self, name: str, end: sfn.Fail) -> tasks.LambdaInvoke:
        """The release function told that the start failed; if it cannot, the workflow tells itself. The
        execution ends at `end` either way."""
        tell = self._task(
            name,
            self.functions.release,
            sfn.TaskInput.from_object({"not_started": sfn.JsonPath.entire_payload}),
        )
        # The state keeps the start's error for the Fail's cause, even if telling failed.
        told_anyway = self._told_by_the_workflow(
            f"{name}, from the workflow",
            event="rollout_not_started",
            action="the package stays approved: start its rollout again once the endpoint is free",
        )
        tell.add_catch(told_anyway, errors=["States.ALL"], result_path=TELLING_ERROR)
        told_anyway.add_catch(end, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        told_anyway.next(end)
        tell.next(end)
        return tell

    def _told_by_the_workflow(
        self,
        name: str,
        *,
        event: str,
        action: str,
        rollout_id: str = "$$.Execution.Id",
        reason: str = ERROR_CAUSE,
        after_telling_failed: bool = True,
    ) -> tasks.SnsPublish:
        """The topic told by Step Functions itself, when the function that tells has failed past its
        retries (or there is none): a path that shares nothing with the functions but the topic. The
        paths are JSONPaths of the state; the state passes through unchanged."""
        message: dict[str, object] = {
            "event": event,
            "rollout_id": sfn.JsonPath.string_at(rollout_id),
            "input": sfn.JsonPath.object_at("$$.Execution.Input"),
            "reason": sfn.JsonPath.string_at(reason),
            "action": action,
        }
        if after_telling_failed:
            message["telling_failed"] = sfn.JsonPath.string_at(f"{TELLING_ERROR}.Cause")
        publish = tasks.SnsPublish(
            self,
            name,
            topic=self._notifications.topic,
            subject=f"{self._config.prefix}: {event.replace('_', ' ')}",
            message=sfn.TaskInput.from_object(message),
            result_path=sfn.JsonPath.DISCARD,
        )
        publish.add_retry(
            errors=["SNS.ThrottledException", "SNS.InternalErrorException", "States.Timeout"],
            interval=Duration.seconds(2),
            max_attempts=4,
            backoff_rate=2,
        )
        return publish

    def _definition(self) -> sfn.IChainable:
        rollback = self._rollback_path()
        promote = self._promotion_path(rollback)
        name_rollout = sfn.Pass(self, "Name the rollout after this execution", parameters=NAMED_INPUT)
        take_lock = self._task(
            "Take the endpoint's lock",
            self.functions.start,
            sfn.TaskInput.from_json_path_at(START_PAYLOAD_PATH),
        )
        locked = sfn.Fail(
            self,
            "Another rollout holds this endpoint",
            error=ENDPOINT_LOCKED,
            cause_path=ERROR_CAUSE,
        )
        refused = sfn.Fail(
            self,
            "Rollout refused",
            error=REFUSED,
            cause_path=ERROR_CAUSE,
        )
        # Nothing is deployed before the start succeeds, so there is nothing to roll back. A start that
        # fails is told on the topic (the approval is refused, not queued: a person starts it again) and
        # a lock this run took before failing is released; then the execution ends with the start's error.
        take_lock.add_catch(
            self._tell_not_started("Tell that another rollout holds the endpoint", locked),
            errors=[ENDPOINT_LOCKED],
            result_path="$.error",
        )
        take_lock.add_catch(
            self._tell_not_started("Tell why the rollout was refused", refused),
            errors=["States.ALL"],
            result_path="$.error",
        )

        deploy = self._task("Deploy the challenger at 0 %", self.functions.deploy)
        check = self._task("Is the deployment done?", self.functions.check_deployment)
        gates = self._task("Run pre-traffic gates", self.functions.gates)
        # shadow and blue_green: the gates asked the candidate at 0 %; now it is deployed their way.
        deploy_for_strategy = self._task("Deploy the challenger for its strategy", self.functions.deploy)
        shift = self._task("Shift traffic to the next step", self.functions.set_traffic)
        judge = self._task("Ask the judge", self.functions.judge)
        for task in (deploy, check, gates, deploy_for_strategy, shift, judge):
            task.add_catch(rollback, errors=["States.ALL"], result_path="$.error")

        wait_for_endpoint = sfn.Wait(self, "Wait for the endpoint", time=sfn.WaitTime.duration(ENDPOINT_POLL))
        bake = sfn.Wait(self, "Bake", time=sfn.WaitTime.seconds_path("$.bake_seconds"))
        wait_for_endpoint.next(check)
        deploy.next(wait_for_endpoint)
        deploy_for_strategy.next(wait_for_endpoint)
        shift.next(bake)
        bake.next(judge)
        in_service = sfn.Condition.string_equals("$.deployment.status", "in_service")
        gates_ran = sfn.Condition.and_(
            sfn.Condition.is_present("$.gates"), sfn.Condition.is_not_null("$.gates")
        )
        # blue_green: SageMaker's guardrails have shifted all traffic and baked by then; nothing to step.
        guarded = sfn.Condition.string_equals("$.request.strategy", "blue_green")
        deployed_after_the_gates = sfn.Condition.or_(
            guarded, sfn.Condition.string_equals("$.request.strategy", "shadow")
        )
        check.next(
            sfn.Choice(self, "Is the endpoint in service?")
            .when(sfn.Condition.and_(in_service, sfn.Condition.not_(gates_ran)), gates)
            .when(sfn.Condition.and_(in_service, guarded), promote)
            .when(in_service, shift)
            .when(sfn.Condition.string_equals("$.deployment.status", "failed"), rollback)
            .otherwise(wait_for_endpoint)
        )
        advance = sfn.Condition.string_equals("$.decision.action", "advance")
        approval = self._approval(rollback)
        # A hold bakes on: the judge looks every minute at the frozen step (renewing the lease) for a
        # person's resume, promote or abort, harm the policy rolls back for, or the hold's timeout.
        held = sfn.Condition.string_equals("$.decision.action", "hold")
        judge.next(
            sfn.Choice(self, "What did the judge say?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.approval_needed"),
                    sfn.Condition.is_not_null("$.approval_needed"),
                ),
                approval,
            )
            .when(advance, shift)
            .when(sfn.Condition.or_(sfn.Condition.string_equals("$.decision.action", "bake"), held), bake)
            .when(sfn.Condition.string_equals("$.decision.action", "promote"), promote)
            .otherwise(rollback)
        )
        # A rejection is recorded as the person's, then rolls back.
        approval.next(
            sfn.Choice(self, "Approved: the next step or the promotion?")
            .when(sfn.Condition.string_equals("$.decision.action", "rollback"), rollback)
            .when(advance, shift)
            .otherwise(promote)
        )
        # Gates that fail roll back: the candidate, at 0 % in the challenger slot, is removed and rejected.
        gates.next(
            sfn.Choice(self, "Did the gates pass?")
            .when(sfn.Condition.boolean_equals("$.gates.passed", False), rollback)
            .when(deployed_after_the_gates, deploy_for_strategy)
            .otherwise(shift)
        )
        resume = self._resume(rollback)
        name_rollout.next(take_lock).next(deploy)
        # The abort function starts the machine with {"abort": ...} to roll a stopped rollout back.
        return (
            sfn.Choice(self, "Abort or new rollout?")
            .when(sfn.Condition.is_present("$.abort"), resume)
            .otherwise(name_rollout)
        )

    def _approval(self, rollback: tasks.LambdaInvoke) -> sfn.Chain:
        """A human gate: the workflow waits on a task token (traffic at the current step) that
        `mlrollout approve` or `reject` answers; then the answer is recorded. A rejection, the timeout
        (the policy's hold timeout, `$.approval_timeout_seconds`) or asking failing rolls back."""
        ask = tasks.LambdaInvoke(
            self,
            "Ask a person to approve",
            lambda_function=self.functions.gate.function,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {"state": sfn.JsonPath.object_at("$"), "task_token": sfn.JsonPath.task_token}
            ),
            result_path="$.approval",
            task_timeout=sfn.Timeout.at("$.approval_timeout_seconds"),
            retry_on_service_exceptions=False,
        )
        ask.add_retry(
            errors=["Lambda.ServiceException", "Lambda.TooManyRequestsException", TIMED_OUT],
            interval=Duration.seconds(5),
            max_attempts=3,
            backoff_rate=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        record = self._task("Record the approval", self.functions.gate)
        for task in (ask, record):
            task.add_catch(rollback, errors=["States.ALL"], result_path="$.error")
        return ask.next(record)

    def _resume(self, rollback: tasks.LambdaInvoke) -> tasks.LambdaInvoke:
        """Load the aborted rollout and hand it to the rollback. A rollout the ledger cannot resume (it
        never started) ends at once; a resume failing past its retries is tried once more after a pause,
        and a second failure is told by the workflow: the aborted rollout is not rolled back."""
        resume = self._task("Load the aborted rollout", self.functions.resume)
        pause = sfn.Wait(
            self,
            "Pause before loading the aborted rollout again",
            time=sfn.WaitTime.duration(PAUSE_BEFORE_TRYING_AGAIN),
        )
        resume_again = self._task("Load the aborted rollout again", self.functions.resume)
        not_found = sfn.Fail(
            self, "Aborted rollout not found", error="RolloutNotResumable", cause_path=ERROR_CAUSE
        )
        not_resumed = sfn.Fail(
            self, "Aborted rollout not rolled back", error="RolloutNotResumed", cause_path=ERROR_CAUSE
        )
        told = self._told_by_the_workflow(
            "Tell that the aborted rollout was not rolled back",
            event="rollout_rollback_failed",
            action="the aborted rollout was not rolled back: restore the endpoint's champion and release "
            "its lock, or abort it again",
            rollout_id="$.abort.rollout_id",
            after_telling_failed=False,
        )
        resume.add_catch(not_found, errors=list(NOT_RESUMABLE), result_path="$.error")
        # The input stays as it was for the second try (the handler refuses unknown keys).
        resume.add_catch(pause, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        pause.next(resume_again)
        resume_again.add_catch(not_found, errors=list(NOT_RESUMABLE), result_path="$.error")
        resume_again.add_catch(told, errors=["States.ALL"], result_path="$.error")
        told.add_catch(not_resumed, errors=["States.ALL"], result_path=sfn.JsonPath.DISCARD)
        told.next(not_resumed)
        resume.next(rollback)
        resume_again.next(rollback)
        return resume
