"""The release chain on the synthesized templates: dev offers to prod (the shipped chain, across regions),
and a staging → prod pair in two accounts, built from the chain's constructs alone (cdk-nag, cfn-lint)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Match, Template

from infra.application import add_compliance_checks
from infra.config import ReleaseSource, ReleaseTarget, load_config
from infra.notifications import Notifications
from infra.registry import ModelRegistry
from infra.release_chain import ReleaseOffering, ReleaseWorkflow
from infra.workflow_task import WorkflowFunction
from lambdas.release.offer import DETAIL_TYPE, EVENT_SOURCE
from tests.infra.conftest import Synthesized, cdk_json_context
from tests.infra.test_compliance import ACCEPTED_CFN_LINT_WARNINGS, _lint, _nag_report

STAGING_ACCOUNT, PROD_ACCOUNT = "111111111111", "222222222222"
APPROVAL_HOURS = 24


def _function_with_handler(synthesized: Synthesized, handler: str) -> dict[str, Any]:
    [function] = [
        f
        for f in synthesized.of_type("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == handler
    ]
    return dict(function)


def test_dev_promote_offers_to_prod_and_forwards_the_offers_to_prods_region(dev: Synthesized) -> None:
    promote = _function_with_handler(dev, "lambdas.handlers.rollout_promote.handler")
    variables = promote["Properties"]["Environment"]["Variables"]
    assert (variables["ENVIRONMENT_NAME"], variables["RELEASE_TO"]) == ("dev", "prod")
    dev.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "events:PutEvents",
                                "Condition": {"StringEquals": {"events:source": EVENT_SOURCE}},
                            }
                        )
                    ]
                )
            }
        },
    )
    # prod runs in eu-west-1: dev's rule puts the offers on that region's default bus, in dev's account.
    dev.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": [EVENT_SOURCE],
                "detail-type": [DETAIL_TYPE],
                "detail": {"target_environment": ["prod"], "source_environment": ["dev"]},
            },
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {
                            "Fn::Join": [
                                "",
                                [
                                    "arn:aws:events:eu-west-1:",
                                    {"Ref": "AWS::AccountId"},
                                    ":event-bus/default",
                                ],
                            ]
                        },
                        "DeadLetterConfig": Match.any_value(),
                    }
                )
            ],
        },
    )
    # One account: nobody else reads the registry, nobody else puts events.
    assert not dev.of_type("AWS::Events::EventBusPolicy")
    for policy in dev.of_type("AWS::S3::BucketPolicy").values():
        assert "iam::" not in json.dumps(policy["Properties"]["PolicyDocument"])


@pytest.fixture(scope="module")
def two_accounts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, Template, Path]:
    """staging (account 1111..., us-east-1) releases into prod (2222..., eu-west-1), approval manual."""
    outdir = tmp_path_factory.mktemp("two-accounts")
    app = App(outdir=str(outdir), context=cdk_json_context())
    staging_config = load_config("dev").model_copy(update={"name": "staging"})
    prod_config = load_config("prod")
    staging = Stack(app, "Staging", env=Environment(account=STAGING_ACCOUNT, region="us-east-1"))
    registry = ModelRegistry(staging, "Registry", prefix=staging_config.prefix, model_families=["churn"])
    promote = WorkflowFunction(
        staging,
        "Promote",
        module="rollout_promote",
        workflow="rollout workflow",
        prefix=staging_config.prefix,
        environment={},
        log_key=registry.key,
    )
    ReleaseOffering(
        staging,
        "ReleaseOffering",
        config=staging_config,
        target=ReleaseTarget(environment="prod", region="eu-west-1", account=PROD_ACCOUNT),
        promote=promote,
        registry=registry,
        notifications=Notifications(staging, "Notifications", prefix=staging_config.prefix, emails=[]),
    )
    prod = Stack(app, "Prod", env=Environment(account=PROD_ACCOUNT, region="eu-west-1"))
    ReleaseWorkflow(
        prod,
        "Release",
        config=prod_config,
        source=ReleaseSource(
            environment="staging",
            region="us-east-1",
            approval="manual",
            approval_timeout_hours=APPROVAL_HOURS,
            account=STAGING_ACCOUNT,
        ),
        registry=ModelRegistry(prod, "Registry", prefix=prod_config.prefix, model_families=["churn"]),
        notifications=Notifications(prod, "Notifications", prefix=prod_config.prefix, emails=[]),
    )
    add_compliance_checks(app)
    app.synth()  # an unacknowledged cdk-nag finding fails here
    return Template.from_stack(staging), Template.from_stack(prod), outdir


def test_the_staging_registry_lets_the_prod_account_read_released_models_only(
    two_accounts: tuple[Template, Template, Path],
) -> None:
    staging, _, _ = two_accounts
    policies = json.dumps(staging.find_resources("AWS::S3::BucketPolicy"))
    assert policies.count(f"iam::{PROD_ACCOUNT}:root") == 2  # objects under models/, and listing them
    staging.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "s3:GetObject",
                                "Principal": {"AWS": f"arn:aws:iam::{PROD_ACCOUNT}:root"},
                                "Resource": {"Fn::Join": ["", [Match.any_value(), "/models/*"]]},
                            }
                        )
                    ]
                )
            }
        },
    )
    staging.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "kms:Decrypt",
                                "Condition": {
                                    "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
                                },
                            }
                        )
                    ]
                )
            }
        },
    )
    staging.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Targets": [
                Match.object_like({"Arn": f"arn:aws:events:eu-west-1:{PROD_ACCOUNT}:event-bus/default"})
            ]
        },
    )


def test_prod_trusts_the_staging_account_on_its_bus_and_waits_for_a_person(
    two_accounts: tuple[Template, Template, Path],
) -> None:
    _, prod, _ = two_accounts
    prod.has_resource_properties(
        "AWS::Events::EventBusPolicy",
        {
            "EventBusName": "default",
            "Statement": {
                "Effect": "Allow",
                "Principal": {"AWS": Match.string_like_regexp(f"iam::{STAGING_ACCOUNT}:root")},
                "Action": "events:PutEvents",
            },
        },
    )
    [machine] = prod.find_resources("AWS::StepFunctions::StateMachine").values()
    definition = json.dumps(machine["Properties"]["DefinitionString"])
    assert "lambda:invoke.waitForTaskToken" in definition
    assert f'\\"TimeoutSeconds\\":{APPROVAL_HOURS * 3600}' in definition
    prod.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"detail": {"target_environment": ["prod"], "source_environment": ["staging"]}},
            "Targets": [Match.object_like({"InputPath": "$.detail"})],
        },
    )
    # The register function decrypts with staging's artifact key only, found by its alias.
    prod.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "kms:Decrypt",
                                "Condition": {
                                    "ForAnyValue:StringEquals": {
                                        "kms:ResourceAliases": "alias/mlrollout-staging-artifacts"
                                    }
                                },
                                "Resource": f"arn:aws:kms:us-east-1:{STAGING_ACCOUNT}:key/*",
                            }
                        )
                    ]
                )
            }
        },
    )


def test_the_two_account_chain_is_cdk_nag_and_cfn_lint_clean(
    two_accounts: tuple[Template, Template, Path],
) -> None:
    _, _, outdir = two_accounts
    nag = _nag_report(outdir)
    assert (nag["conclusion"], nag["violations"]) == ("success", [])
    for template in sorted(outdir.glob("*.template.json")):
        for match in _lint(template):
            assert not match.rule.id.startswith("E"), f"{template.name}: {match}"
            assert match.rule.id in ACCEPTED_CFN_LINT_WARNINGS, f"{template.name}: {match}"
