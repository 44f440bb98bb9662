"""A definition parsed once for its creation and all its executions (`localcloud.stepfunctions.parsing`)."""

from __future__ import annotations

import json
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser

from localcloud.stepfunctions.parsing import parse_trees_kept
from tests.functional.localcloud.stepfunctions.test_execution_events import ROLE, ended

# Each execution's output depends on its own input: executions built from one tree share no state.
ECHO = {
    "StartAt": "Which",
    "States": {
        "Which": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
            "Default": "Small",
        },
        "Big": {"Type": "Pass", "Parameters": {"size": "big", "n.$": "$.n"}, "End": True},
        "Small": {"Type": "Pass", "Parameters": {"size": "small", "n.$": "$.n"}, "End": True},
    },
}


def test_a_definition_is_parsed_once_for_its_creation_and_every_execution() -> None:
    parse = ASLParser.state_machine
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        parse_trees_kept(),
        mock.patch.object(ASLParser, "state_machine", autospec=True, side_effect=parse) as parses,
    ):
        states = boto3.client("stepfunctions")
        # A definition no other test uses: the kept trees are the process's.
        definition = json.dumps({"Comment": "parsed once", **ECHO})
        created = states.create_state_machine(name="echo", definition=definition, roleArn=ROLE)
        machine = created["stateMachineArn"]
        runs = {
            n: states.start_execution(stateMachineArn=machine, name=f"n{n}", input=json.dumps({"n": n}))
            for n in (1, 2, 3)
        }
        outputs = {n: json.loads(ended(run["executionArn"])["output"]) for n, run in runs.items()}
    assert outputs == {1: {"size": "small", "n": 1}, 2: {"size": "big", "n": 2}, 3: {"size": "big", "n": 3}}
    assert parses.call_count == 1


def test_a_definition_with_syntax_errors_is_still_refused() -> None:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), parse_trees_kept():
        states = boto3.client("stepfunctions")
        broken = json.dumps({"StartAt": "Nowhere", "States": {"Nowhere": {"Type": "Teleport"}}})
        for _ in range(2):  # a refusal is not kept as a tree
            with pytest.raises(ClientError, match="Teleport"):
                states.create_state_machine(name="broken", definition=broken, roleArn=ROLE)
