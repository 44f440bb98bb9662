"""What moto computed again at every call, computed once (`localcloud.moto_costs`): the answers unchanged."""

from __future__ import annotations

import inspect
import json
from unittest import mock

import boto3
from moto import mock_aws

from localcloud import moto_costs
from localcloud.moto_costs import moto_costs_kept

REGION = "us-east-1"


def test_sns_signs_with_one_key_per_process_and_every_message_is_still_signed() -> None:
    moto_costs.signing_key.cache_clear()
    generate = moto_costs.rsa.generate_private_key
    with (
        mock_aws(),
        moto_costs_kept(),
        mock.patch("localcloud.moto_costs.rsa.generate_private_key", wraps=generate) as generated,
    ):
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        bodies = []
        for name in ("first", "second"):
            topic = sns.create_topic(Name=name)["TopicArn"]
            queue = sqs.create_queue(QueueName=name)["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
            sns.publish(TopicArn=topic, Message=f"to {name}")
            [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
            bodies.append(json.loads(message["Body"]))
    assert generated.call_count == 1
    assert [body["Message"] for body in bodies] == ["to first", "to second"]
    assert all(body["Signature"] and body["SignatureVersion"] == "2" for body in bodies)
    assert bodies[0]["Signature"] != bodies[1]["Signature"]


def test_a_response_class_s_methods_are_listed_once_and_every_action_still_answers() -> None:
    with (
        mock_aws(),
        moto_costs_kept(),
        mock.patch("moto.core.utils.inspect.getmembers", wraps=inspect.getmembers) as listed,
    ):
        moto_costs._method_names.cache_clear()
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for value in ("a", "b", "c"):
            dynamodb.put_item(TableName="t", Item={"k": {"S": value}})
        assert dynamodb.scan(TableName="t")["Count"] == 3
        assert boto3.client("sqs", region_name=REGION).list_queues().get("QueueUrls", []) == []
    assert listed.call_count == 2  # DynamoDB's response class, then SQS's
