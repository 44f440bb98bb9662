"""cdk-nag and cfn-lint on every synthesized template: clean, and able to fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint_file

from infra.application import add_compliance_checks
from tests.infra.conftest import Synthesized

# cfn-lint warnings we accept, each once, with the reason. Errors are never accepted.
ACCEPTED_CFN_LINT_WARNINGS: dict[str, str] = {
    "W3005": "aws-cdk-lib makes every Lambda function DependsOn its role and the role's policy, so the "
    "policy exists before the first invocation; naming the role there too duplicates its GetAtt, harmlessly.",
}


def _nag_report(outdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((outdir / "validation-report.json").read_text())
    nag: list[dict[str, Any]] = [
        plugin for plugin in report["pluginReports"] if plugin["pluginName"] == "AwsSolutions"
    ]
    assert len(nag) == 1, "cdk-nag did not report: is the plugin registered?"
    return nag[0]


def _acknowledgments(outdir: Path) -> dict[str, str]:
    acknowledged: dict[str, str] = {}
    for metadata_file in outdir.glob("*.metadata.json"):
        for entries in json.loads(metadata_file.read_text()).values():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    # aws-cdk-lib acknowledges some of its own rules; ours are the cdk-nag ones.
                    acknowledged.update(
                        {
                            rule: reason
                            for rule, reason in entry["data"].items()
                            if rule.startswith("AwsSolutions::")
                        }
                    )
    return acknowledged


def test_cdk_nag_reports_no_unacknowledged_finding(dev: Synthesized) -> None:
    nag = _nag_report(dev.outdir)
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


def test_every_acknowledgment_has_a_specific_reason_and_matches_a_finding(dev: Synthesized) -> None:
    acknowledged = _acknowledgments(dev.outdir)
    suppressed = {
        violation["acknowledgedId"] for violation in _nag_report(dev.outdir)["suppressedViolations"]
    }
    assert acknowledged, "the stack has wildcard permissions that must be acknowledged explicitly"
    for rule, reason in acknowledged.items():
        assert len(reason.split()) >= 6, f"{rule}: reason too thin for a reviewer: {reason!r}"
        assert rule in suppressed, f"{rule} is acknowledged but no longer found: remove it"


def test_cdk_nag_fails_synth_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Careless")
    s3.Bucket(stack, "PlainBucket")  # no TLS policy, no access logs
    add_compliance_checks(app)
    with pytest.raises(Exception, match="AwsSolutions-S"):
        app.synth()


def _lint(template: Path) -> list[Any]:
    matches: list[Any] = lint_file(template, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    return matches


def test_cfn_lint_finds_no_error_and_only_accepted_warnings(dev: Synthesized) -> None:
    templates = sorted(dev.outdir.glob("*.template.json"))
    assert templates
    for template in templates:
        for match in _lint(template):
            rule = match.rule.id
            assert not rule.startswith("E"), f"{template.name}: {match}"
            assert rule in ACCEPTED_CFN_LINT_WARNINGS, f"{template.name}: unlisted warning {match}"


def test_cfn_lint_reports_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.template.json"
    broken.write_text(
        json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"Nope": 1}}}})
    )
    assert any(match.rule.id.startswith("E") for match in _lint(broken))
