"""The app's stacks: the environment's, and one per model family that refers to it by SSM only."""

from __future__ import annotations

import json

from infra.platform_parameters import parameter_name
from lambdas.shared.operations import operations_parameter_name
from tests.infra.conftest import Synthesized


def _manifest_stacks(dev: Synthesized) -> dict[str, list[str]]:
    artifacts = json.loads((dev.outdir / "manifest.json").read_text())["artifacts"]
    return {
        name: [
            d
            for d in artifact.get("dependencies", [])
            if d in artifacts and artifacts[d]["type"].endswith("stack")
        ]
        for name, artifact in artifacts.items()
        if artifact["type"] == "aws:cloudformation:stack"
    }


def test_each_family_has_its_stack_deployed_after_the_environments(dev: Synthesized) -> None:
    stacks = _manifest_stacks(dev)
    platform = f"MlRollout-{dev.config.name}"
    assert stacks[platform] == []
    for family in dev.config.model_families:
        assert stacks[f"{platform}-{family}"] == [platform]


def test_no_stack_exports_or_imports_a_value(dev: Synthesized) -> None:
    for path in dev.outdir.glob("*.template.json"):
        text = path.read_text()
        assert "Fn::ImportValue" not in text and "Fn::GetStackOutput" not in text, path.name
        assert not any("Export" in o for o in json.loads(text).get("Outputs", {}).values()), path.name


def test_the_environments_stack_hands_its_bucket_key_and_topic_to_the_families(dev: Synthesized) -> None:
    parameters = {
        p["Properties"]["Name"]: p["Properties"]["Value"] for p in dev.of_type("AWS::SSM::Parameter").values()
    }
    prefix = dev.config.prefix
    [bucket] = [k for k, v in dev.of_type("AWS::S3::Bucket").items() if k.startswith("RegistryArtifacts")]
    [key] = [k for k in dev.of_type("AWS::KMS::Key") if k.startswith("RegistryArtifactKey")]
    [topic] = [k for k in dev.of_type("AWS::SNS::Topic") if k.startswith("NotificationsTopic")]
    assert parameters[parameter_name(prefix, "bucket")] == {"Ref": bucket}
    assert parameters[parameter_name(prefix, "key")] == {"Fn::GetAtt": [key, "Arn"]}
    assert parameters[parameter_name(prefix, "topic")] == {"Ref": topic}


def test_the_environments_stack_tells_the_command_where_its_rollout_resources_are(dev: Synthesized) -> None:
    [parameter] = [
        p["Properties"]
        for p in dev.of_type("AWS::SSM::Parameter").values()
        if p["Properties"]["Name"] == operations_parameter_name(dev.config.prefix)
    ]
    parts = parameter["Value"]["Fn::Join"][1]
    refs = {part["Ref"] for part in parts if isinstance(part, dict)}
    wanted = {
        "AWS::StepFunctions::StateMachine": "RolloutStateMachine",
        "AWS::DynamoDB::Table": "RolloutLedgerTable",
        "AWS::Lambda::Function": "RolloutRolloutAbortFunction",
        "AWS::AppConfig::Application": "FeatureFlagsApplication",
        "AWS::AppConfig::DeploymentStrategy": "FeatureFlagsDeploymentStrategy",
    }
    for resource_type, prefix in wanted.items():
        assert [r for r in dev.of_type(resource_type) if r.startswith(prefix) and r in refs], resource_type
    assert parameter["Tier"] == "Standard"
