"""Where the environment's rollout resources are, for the `mlrollout` command: one SSM parameter.

The document's shape is ``lambdas.shared.operations.OperationsDocument``; the command reads it by the
environment's name alone, since the tables and functions keep the names CloudFormation gives them.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.feature_flags import FeatureFlags
from infra.rollout_workflow import RolloutWorkflow
from lambdas.shared.operations import operations_parameter_name


class OperationsParameter(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        rollout: RolloutWorkflow,
        flags: FeatureFlags,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        document = {
            "state_machine_arn": rollout.state_machine.state_machine_arn,
            "ledger_table": rollout.ledger_table.table_name,
            "lock_table": rollout.lock_table.table_name,
            "abort_function": rollout.abort_function.function.function_name,
            "topic_arn": topic.topic_arn,
            "flags": {
                "application_id": flags.application_id,
                "environment_id": flags.environment_id,
                "profile_id": flags.profile_id,
                "deployment_strategy_id": flags.deployment_strategy.deployment_strategy_id,
            },
        }
        self.parameter_name = operations_parameter_name(prefix)
        self.parameter = ssm.StringParameter(
            self,
            "Parameter",
            parameter_name=self.parameter_name,
            string_value=Stack.of(self).to_json_string(document),
            description=f"{prefix}: where the rollout's resources are, for the mlrollout command",
            tier=ssm.ParameterTier.STANDARD,
        )
