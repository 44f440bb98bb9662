"""`AWS::SSM::Parameter` deployed into moto's Parameter Store (`localcloud.cloudformation.resources.ssm`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from localcloud.awslambda.runner import LambdaRunner
from localcloud.cloudformation.deploy import deploy_stack
from localcloud.cloudformation.template import StackTemplate, local_physical_name


def client(service: str) -> Any:
    session: Any = boto3.Session(region_name="us-east-1")
    return session.client(service)


@mock_aws
def test_a_parameter_is_put_with_its_properties_and_named_by_ref_and_get_att(tmp_path: Path) -> None:
    resources: dict[str, Any] = {
        "Threshold": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Name": "/mlrollout/churn/threshold",
                "Type": "String",
                "Value": "0.75",
                "Description": "the judge's threshold",
                "Tier": "Advanced",
                "DataType": "text",
                "AllowedPattern": "^[0-9.]+$",
                "Tags": {"team": "ml", "family": "churn"},
            },
        },
        "Unnamed": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "StringList", "Value": "a,b"}},
        # A queue named after what the parameters give `Ref` and `Fn::GetAtt`.
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": {
                    "Fn::Join": [
                        "-",
                        [
                            {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "Threshold"}]}]},
                            {"Fn::GetAtt": ["Unnamed", "Type"]},
                            {"Fn::Select": [0, {"Fn::Split": [".", {"Fn::GetAtt": ["Threshold", "Value"]}]}]},
                        ],
                    ]
                }
            },
        },
    }
    template = StackTemplate(name="Params", body={"Resources": resources}, assembly_dir=tmp_path)
    with LambdaRunner([]) as runner:
        stack = deploy_stack(template, runner=runner)

    ssm = client("ssm")
    [described] = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": ["/mlrollout/churn/threshold"]}]
    )["Parameters"]
    assert (described["Type"], described["Description"], described["Tier"], described["DataType"]) == (
        "String",
        "the judge's threshold",
        "Advanced",
        "text",
    )
    assert described["AllowedPattern"] == "^[0-9.]+$"
    assert ssm.get_parameter(Name="/mlrollout/churn/threshold")["Parameter"]["Value"] == "0.75"
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/mlrollout/churn/threshold")
    assert {t["Key"]: t["Value"] for t in tags["TagList"]} == {"team": "ml", "family": "churn"}
    unnamed = local_physical_name("Params", "Unnamed")
    assert stack.resources["Unnamed"].ref == unnamed
    parameter = ssm.get_parameter(Name=unnamed)["Parameter"]
    assert (parameter["Type"], parameter["Value"]) == ("StringList", "a,b")
    assert (
        client("sqs").get_queue_url(QueueName="churn-StringList-0")["QueueUrl"] == stack.queue_urls["Queue"]
    )
