"""`make demo-retrain`: new data arrives, the model family retrains itself, and the result rolls out.

    python -m localcloud.demo.retraining --cdk-out cdk.out.local [--report demo-retrain-report.html]

The acts: README.md.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moto.sns.models import sns_backends

from localcloud.cloudformation.template import parameter_values
from localcloud.cloudwatch.alarm_evaluator import AlarmEvaluator
from localcloud.demo.rollout import Demo
from localcloud.demo.story import (
    ACCOUNT,
    DEFAULT_RATE,
    POLL_SECONDS,
    REGION,
    DemoError,
    Story,
    command_line,
    tell,
)
from pipelines.churn_data import CHURN_SCHEMA, LABEL, synthetic_churn

# Three jobs as processes (each imports scikit-learn) on a busy 2-core machine.
RETRAINING_DEADLINE_SECONDS = 300.0
DROP_ROWS = 3000
DROP_SEED = 7
DROP_DAY = "2026-11-25"


def main(argv: Sequence[str] | None = None) -> int:
    return command_line(
        argv,
        story=run,
        description=__doc__,
        report=Path("demo-retrain-report.html"),
        cdk_out=Path("cdk.out.local"),
    )


def run(cdk_out: Path, report: Path, *, rate: float = DEFAULT_RATE) -> Story:
    """The retraining story on a fresh local cloud; the report written to `report`."""
    from localcloud.sagemaker.jobs import run_jobs_locally  # noqa: PLC0415 - a gap filler, opened in order

    return tell(
        RetrainDemo,
        cdk_out,
        report,
        rate=rate,
        plan={"v1": ("logistic", 1)},
        title="mlrollout on the local cloud: retraining",
        gap_fillers=lambda scratch: {"sagemaker jobs": lambda _cloud: run_jobs_locally(scratch / "jobs")},
    )


def drop_csv(rows: int, seed: int, rename: tuple[str, str] | None = None) -> bytes:
    """A drop of training data: seeded synthetic customers with their label, every feature a column.
    `rename` = (old, new) renames one column, as an upstream schema change would."""
    data = synthetic_churn(rows, seed)
    header = [*CHURN_SCHEMA.names, LABEL]
    if rename is not None:
        header = [rename[1] if column == rename[0] else column for column in header]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for features, label in zip(data.features.tolist(), data.labels.tolist(), strict=True):
        writer.writerow([*(_cell(value) for value in features), str(label)])
    return out.getvalue().encode()


def _failure_reason(execution: dict[str, Any]) -> str:
    """The failed execution's error and cause, the cause's Lambda error message when it is one."""
    cause = str(execution.get("cause", ""))
    with contextlib.suppress(json.JSONDecodeError, AttributeError):
        cause = str(json.loads(cause).get("errorMessage", cause))
    return f"{execution.get('error', 'Failed')}: {cause}"


def _cell(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class RetrainDemo(Demo):
    def _acts(self, evaluator: AlarmEvaluator) -> None:
        story = self.story
        with evaluator.running(interval_seconds=1.0), self._sampler():
            self.v1_serves_users()
            story.say("act 2: a drop of new training data arrives")
            self.retrain_and_roll_out()
            story.say("act 3: a drop with a renamed column arrives (a schema change upstream)")
            self.retraining_refuses_bad_data()

    # --- the acts -------------------------------------------------------------------------------------

    def retrain_and_roll_out(self) -> None:
        rollouts_before = {e["executionArn"] for e in self._executions()}
        key = self.put_drop("part-0000.csv", drop_csv(DROP_ROWS, DROP_SEED))
        execution = self.retraining_started_by(key)
        ended = self.follow_retraining(execution)
        if ended["status"] != "SUCCEEDED":
            raise DemoError(f"the retraining ended {ended['status']}: {ended.get('cause', '')}")
        package = self.registered_package()
        metadata = package.get("CustomerMetadataProperties", {})
        self.story.decide(
            "retrained",
            "retraining",
            f"version {package['ModelPackageVersion']} {package['ModelApprovalStatus']}: data version "
            f"{metadata.get('data_version', '?')[:12]}, code {metadata.get('code_version', '?')}, "
            f"accuracy {metadata.get('metric.accuracy', '?')}",
        )
        self.story.say(f"  the package's metadata: {json.dumps(metadata, sort_keys=True)}")
        self.story.retrainings.append(
            {"execution": execution, "status": ended["status"], "metadata": metadata, "key": key}
        )
        rollout = self._new_execution(rollouts_before, "the approval of the retrained package")
        began = self.story.at()
        self.story.say(f"  rollout {rollout.rsplit(':', 1)[1]} started by the approval")
        self._record("retrained", rollout, began, self.follow(rollout, "retrained"), "promoted")

    def retraining_refuses_bad_data(self) -> None:
        endpoint_before = self.sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
        packages_before = len(self._packages())
        published_before = len(self._published())
        drop = drop_csv(200, DROP_SEED + 1, rename=("support_calls_90d", "support_calls"))
        key = self.put_drop("part-0001.csv", drop)
        execution = self.retraining_started_by(key)
        ended = self.follow_retraining(execution)
        if ended["status"] != "FAILED":
            raise DemoError(f"the retraining of a schema change ended {ended['status']}, expected FAILED")
        reason = _failure_reason(ended)
        self.story.decide("bad drop", "failure", f"retraining failed: {reason}"[:300])
        endpoint_after = self.sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
        untouched = endpoint_after["EndpointConfigName"] == endpoint_before["EndpointConfigName"] and (
            self._weights() == {"champion": 100.0, "challenger": 0.0}
        )
        registered = len(self._packages()) - packages_before
        notified = self._published()[published_before:]
        self.story.say(
            f"  packages registered: {registered}; champion untouched: {untouched}; notifications "
            f"published: {len(notified)}"
        )
        if registered or not untouched or not notified:
            raise DemoError("the failed retraining changed something or told no one")
        self.story.retrainings.append(
            {
                "execution": execution,
                "status": ended["status"],
                "reason": reason,
                "key": key,
                "registered": registered,
                "champion_untouched": untouched,
                "notifications": len(notified),
            }
        )

    # --- helpers --------------------------------------------------------------------------------------

    def put_drop(self, name: str, body: bytes) -> str:
        [bucket] = [
            name for logical, name in self.cloud.stack.bucket_names.items() if "TrainingData" in logical
        ]
        key = f"{self._family()}/{DROP_DAY}/{name}"
        self.cloud.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        self.story.decide("data", "note", f"new data s3://{bucket}/{key} ({len(body)} bytes)")
        return key

    def _family(self) -> str:
        """The model family whose package group this endpoint's rollouts use (the retraining's settings)."""
        names = [
            str(r.get("Properties", {}).get("Name", ""))
            for r in self.cloud.template.resources_of_type("AWS::SSM::Parameter").values()
        ]
        paths = sorted({name.rsplit("/", 1)[0] + "/" for name in names if "/families/" in name}) or ["//"]
        for name, value in parameter_values(self.cloud.template, self.cloud.resolver, paths[0]).items():
            if "/families/" in name and json.loads(value)["model_package_group"] == self.group:
                return name.rsplit("/", 1)[1]
        raise DemoError(f"no family's settings parameter names the package group {self.group}")

    def retraining_started_by(self, key: str) -> str:
        machine = self.cloud.stack.retraining_state_machine_arn
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for execution in self.states.list_executions(stateMachineArn=machine)["executions"]:
                described = self.states.describe_execution(executionArn=execution["executionArn"])
                trigger = json.loads(described["input"]).get("trigger", {})
                if trigger.get("kind") == "new_data" and trigger.get("detail", {}).get("key") == key:
                    self.story.say(f"  retraining {execution['name']} started by the new-data rule")
                    return str(execution["executionArn"])
            time.sleep(POLL_SECONDS)
        raise DemoError(f"no retraining started for s3 key {key}")

    def follow_retraining(self, execution: str) -> dict[str, Any]:
        seen = 0
        shown: set[str] = set()
        deadline = time.monotonic() + RETRAINING_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            entered = self._states_entered(execution)
            for state in entered[seen:]:
                # The job loops (wait, check, ask) once each: a job's progress is its next state.
                if state not in shown and not state.startswith("Wait"):
                    self.story.say(f"  retraining: {state}")
                shown.add(state)
            seen = len(entered)
            described = self.states.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return dict(described)
            time.sleep(POLL_SECONDS)
        raise DemoError(f"the retraining still runs after {RETRAINING_DEADLINE_SECONDS} s")

    def registered_package(self) -> dict[str, Any]:
        packages = self._packages()
        if not packages:
            raise DemoError("the retraining succeeded and registered nothing")
        newest = max(packages, key=lambda package: package["CreationTime"])
        return dict(self.sagemaker.describe_model_package(ModelPackageName=newest["ModelPackageArn"]))

    def _packages(self) -> list[dict[str, Any]]:
        listed = self.sagemaker.list_model_packages(ModelPackageGroupName=self.group, MaxResults=100)
        return list(listed["ModelPackageSummaryList"])

    def _new_execution(self, before: set[str], what: str) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            started = [e for e in self._executions() if e["executionArn"] not in before]
            if started:
                return str(started[0]["executionArn"])
            time.sleep(POLL_SECONDS)
        raise DemoError(f"no rollout started after {what}")

    def _published(self) -> list[str]:
        """Messages published to the notifications topic (moto keeps them on the topic)."""
        topic = sns_backends[ACCOUNT][REGION].topics[self.cloud.stack.topic_arn]
        return [str(message) for message in getattr(topic, "sent_notifications", [])]


if __name__ == "__main__":
    sys.exit(main())
