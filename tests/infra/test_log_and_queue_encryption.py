"""What the scanners expect of the environment's stack: every function's log group encrypted with the
environment's key (requests can reach the logs), every dead-letter queue encrypted, the flag validator
invocable by this account's AppConfig application only."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synthesized


def _artifact_key_id(synth: Synthesized) -> str:
    [key_id] = [
        logical_id
        for logical_id, key in synth.of_type("AWS::KMS::Key").items()
        if "model artifacts" in key["Properties"].get("Description", "")
    ]
    return key_id


def _function_log_groups(synth: Synthesized) -> dict[str, dict[str, Any]]:
    referenced = {
        function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        for function in synth.of_type("AWS::Lambda::Function").values()
        if "LoggingConfig" in function["Properties"]
    }
    return {logical_id: synth.resources[logical_id] for logical_id in referenced}


def test_every_functions_log_group_is_encrypted_with_the_environments_key(dev: Synthesized) -> None:
    functions = dev.of_type("AWS::Lambda::Function")
    handlers = [
        f for f in functions.values() if str(f["Properties"].get("Handler", "")).startswith("lambdas.")
    ]
    assert handlers and all("LoggingConfig" in f["Properties"] for f in handlers)
    key_id = _artifact_key_id(dev)
    log_groups = _function_log_groups(dev)
    assert len(log_groups) == len(handlers)
    for logical_id, log_group in log_groups.items():
        assert log_group["Properties"].get("KmsKeyId") == {"Fn::GetAtt": [key_id, "Arn"]}, logical_id


def test_cloudwatch_logs_may_use_the_key_for_this_accounts_log_groups_only(dev: Synthesized) -> None:
    statements = dev.resources[_artifact_key_id(dev)]["Properties"]["KeyPolicy"]["Statement"]
    [logs] = [s for s in statements if s.get("Sid") == "AllowCloudWatchLogsOfThisAccount"]
    principal = logs["Principal"]["Service"]
    assert "logs." in str(principal) and ".amazonaws.com" in str(principal)
    context = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    parts = context["Fn::Join"][1]
    assert {"Ref": "AWS::AccountId"} in parts
    assert str(parts[-1]).endswith(":log-group:*")


def test_every_dead_letter_queue_is_encrypted(dev: Synthesized) -> None:
    queues = dev.of_type("AWS::SQS::Queue")
    dead_letter_arns = {
        str(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
        for rule in dev.of_type("AWS::Events::Rule").values()
        for target in rule["Properties"].get("Targets", [])
        if "DeadLetterConfig" in target
    } | {
        str(function["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0])
        for function in dev.of_type("AWS::Lambda::Function").values()
        if "DeadLetterConfig" in function["Properties"]
    }
    assert dead_letter_arns and dead_letter_arns <= set(queues)
    for logical_id in dead_letter_arns:
        properties = queues[logical_id]["Properties"]
        assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties, logical_id


def test_the_flag_validator_may_be_invoked_by_this_accounts_appconfig_application_only(
    dev: Synthesized,
) -> None:
    [permission] = [
        p["Properties"]
        for p in dev.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "appconfig.amazonaws.com"
    ]
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    parts = permission["SourceArn"]["Fn::Join"][1]
    rendered = "".join(part if isinstance(part, str) else "<token>" for part in parts)
    assert ":appconfig:" in rendered and ":application/" in rendered
    [application] = dev.of_type("AWS::AppConfig::Application")
    assert {"Ref": application} in parts
