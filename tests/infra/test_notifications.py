"""The notification topic: encrypted with its own key, TLS-only, reachable by this environment's alarms."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from tests.infra.conftest import Synthesized

KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey*"]


def _topic(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    name = f"{synth.config.prefix}-notifications"
    topics = {
        logical_id: resource
        for logical_id, resource in synth.of_type("AWS::SNS::Topic").items()
        if resource["Properties"].get("TopicName") == name
    }
    assert len(topics) == 1, f"expected one topic named {name}, found {sorted(topics)}"
    return next(iter(topics.items()))


def _topic_key(synth: Synthesized) -> dict[str, Any]:
    _, topic = _topic(synth)
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key: dict[str, Any] = synth.resources[key_id]
    assert key["Type"] == "AWS::KMS::Key"
    return key


def _joined(value: Any) -> str:
    """Flattens an Fn::Join into text, each token rendered as <token> (enough to match ARN patterns)."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return str(separator).join(part if isinstance(part, str) else "<token>" for part in parts)


def test_topic_is_encrypted_with_a_rotating_customer_key(dev: Synthesized) -> None:
    key = _topic_key(dev)
    assert key["Properties"]["EnableKeyRotation"] is True


def test_topic_refuses_publishes_without_tls(dev: Synthesized) -> None:
    topic_id, _ = _topic(dev)
    dev.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic_id}],
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "sns:Publish",
                                    "Principal": "*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            ),
        },
    )


def test_key_policy_lets_cloudwatch_alarms_encrypt_messages_and_grants_eventbridge_nothing(
    dev: Synthesized,
) -> None:
    statements = _topic_key(dev)["Properties"]["KeyPolicy"]["Statement"]
    by_service = {
        statement["Principal"]["Service"]: statement
        for statement in statements
        if isinstance(statement.get("Principal"), dict) and "Service" in statement["Principal"]
    }
    cloudwatch = by_service["cloudwatch.amazonaws.com"]
    assert cloudwatch["Effect"] == "Allow"
    assert sorted(cloudwatch["Action"]) == KEY_ACTIONS
    # No EventBridge rule targets the topic, so no unconditioned grant to events.amazonaws.com.
    assert "events.amazonaws.com" not in by_service
    assert not any(
        target["Arn"] == {"Ref": _topic(dev)[0]}
        for rule in dev.of_type("AWS::Events::Rule").values()
        for target in rule["Properties"].get("Targets", [])
    )


def test_cloudwatch_may_use_the_key_only_for_this_environments_alarms(dev: Synthesized) -> None:
    statements = _topic_key(dev)["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = next(
        statement
        for statement in statements
        if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    )
    condition = cloudwatch["Condition"]
    assert condition["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    source_arn = _joined(condition["ArnLike"]["aws:SourceArn"])
    assert source_arn.startswith("arn:") and ":cloudwatch:" in source_arn
    assert source_arn.endswith(f":alarm:{dev.config.prefix}-*")


def test_topic_policy_lets_this_environments_alarms_publish(dev: Synthesized) -> None:
    topic_id, _ = _topic(dev)
    dev.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic_id}],
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Allow",
                                    "Action": "sns:Publish",
                                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                    "Condition": Match.object_like(
                                        {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                                    ),
                                }
                            )
                        ]
                    )
                }
            ),
        },
    )


def test_on_call_emails_from_config_are_subscribed(dev: Synthesized) -> None:
    topic_id, _ = _topic(dev)
    assert dev.config.notifications.emails, "the dev config should name at least one e-mail"
    for email in dev.config.notifications.emails:
        dev.template.has_resource_properties(
            "AWS::SNS::Subscription",
            {"Protocol": "email", "Endpoint": email, "TopicArn": {"Ref": topic_id}},
        )
