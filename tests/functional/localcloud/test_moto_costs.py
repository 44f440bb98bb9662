"""What moto computed again at every call, computed once (`localcloud.moto_costs`): the answers unchanged."""

from __future__ import annotations

import inspect
import json
from unittest import mock

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto import mock_aws
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import EmptyResult

from localcloud import moto_costs
from localcloud.moto_costs import moto_costs_kept

REGION = "us-east-1"


def test_sns_signs_with_one_key_per_process_and_every_message_is_still_signed() -> None:
    moto_costs.signing_key.cache_clear()
    generate = rsa.generate_private_key
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


def test_an_action_is_looked_up_by_its_name_and_a_method_added_later_is_found() -> None:
    with (
        mock_aws(),
        moto_costs_kept(),
        mock.patch("moto.core.utils.inspect.getmembers", wraps=inspect.getmembers) as listed,
    ):
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        cloudwatch.put_metric_data(Namespace="N", MetricData=[{"MetricName": "M", "Value": 1.0}])
        assert [metric["MetricName"] for metric in cloudwatch.list_metrics()["Metrics"]] == ["M"]
        with pytest.raises(NotImplementedError, match="put_composite_alarm"):
            cloudwatch.put_composite_alarm(AlarmName="any", AlarmRule="TRUE")
        added: list[str] = []

        # As `localcloud.cloudwatch` adds PutCompositeAlarm to moto's CloudWatch after its first calls.
        def put_composite_alarm(response: CloudWatchResponse) -> EmptyResult:
            added.append(str(response._get_param("AlarmName")))
            return EmptyResult()

        with mock.patch.object(CloudWatchResponse, "put_composite_alarm", put_composite_alarm, create=True):
            cloudwatch.put_composite_alarm(AlarmName="any", AlarmRule="TRUE")
        assert added == ["any"]
    assert listed.call_count == 0
