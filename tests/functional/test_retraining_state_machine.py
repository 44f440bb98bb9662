"""The retraining workflow end to end: the synthesized state machine on moto's executor, every task the
real handler from its synthesized asset, the three jobs real processes of the training image's programs,
a data drop delivered by the stack's own rule.

How it is emulated: `tests/functional/retraining_cloud.py`. The local environment's config (retraining
auto-approves there) is synthesized once for the module.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from infra.config import load_config
from localcloud.cloudformation.template import app_template, load_stacks
from tests.functional.retraining_cloud import Deployment, EmulatedAws, deploy, retraining_template
from tests.functional.rollout_support import wait_until
from tests.infra.conftest import shared_outdir
from tests.unit.test_preprocess import drop_text

STACK = "MlRollout-local"
DROP = "2026-11-25/part-0.csv"
LOCK_DEADLINE_SECONDS = 60.0
ROWS = 200


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedAws]:
    template = app_template(load_stacks(shared_outdir(tmp_path_factory, "local")), STACK)
    emulated = EmulatedAws(retraining_template(template))
    yield emulated
    emulated.close()


@pytest.fixture
def cloud(aws: EmulatedAws) -> Iterator[Deployment]:
    yield from deploy(aws)


pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def manual(cloud: Deployment) -> dict[str, object]:
    return {"model_family": cloud.family, "trigger": {"kind": "manual", "detail": {}}}


def test_a_data_drop_retrains_and_registers_an_approved_package_with_its_provenance(
    cloud: Deployment,
) -> None:
    [execution] = cloud.drop(DROP, drop_text(ROWS, seed=1))
    finished = cloud.finished(execution)
    assert finished["status"] == "SUCCEEDED", cloud.task_errors(execution)
    entered = cloud.states_entered(execution)
    assert entered[:3] == ["Name the run after this execution", "Take the family's lock", "Is the lock ours?"]
    assert [s for s in entered if s.startswith("Start ")] == [
        "Start the preprocessing",
        "Start the training",
        "Start the evaluation",
    ]
    assert entered[-4:] == [
        "Gate and register the model",
        "Release the lock",
        "Approved or pending?",
        "Handed to the rollout",
    ]
    output = cloud.output(execution)
    assert output["trigger"] == {
        "kind": "new_data",
        "detail": {"bucket": cloud.settings.data_bucket, "key": f"{cloud.family}/{DROP}"},
    }
    [package] = cloud.packages()
    assert package["ModelApprovalStatus"] == "Approved"
    assert output["registration"]["model_package_arn"] == package["ModelPackageArn"]
    metadata = package["CustomerMetadataProperties"]
    manifest = cloud.read_json(metadata["data_manifest"])
    assert metadata["data_version"] == manifest["data_version"]
    assert [item["key"] for item in manifest["objects"]] == [DROP]
    assert metadata["recipe"] == "logistic" and metadata["hp.C"] == "1.0"
    assert metadata["training_rows"] == str(ROWS)
    assert (
        float(metadata["metric.accuracy"])
        >= cloud.settings.families[cloud.family].gates.minimum_metrics["accuracy"]
    )
    assert metadata["retraining_execution"] == execution
    # What the rollout's gates read sits beside the registered artifact.
    [container] = package["InferenceSpecification"]["Containers"]
    folder = container["ModelDataUrl"].removesuffix("model.tar.gz")
    assert set(cloud.read_json(f"{folder}gates/metrics.json")) >= {"accuracy", "auc"}
    assert cloud.read_json(f"{folder}evaluation.json")["data_version"] == metadata["data_version"]
    assert cloud.lock_holder() is None
    assert cloud.notifications() == []


def test_the_same_data_retrained_again_has_the_same_data_version(cloud: Deployment) -> None:
    [first] = cloud.drop(DROP, drop_text(ROWS, seed=1))
    assert cloud.finished(first)["status"] == "SUCCEEDED", cloud.task_errors(first)
    again = cloud.start(manual(cloud))
    assert cloud.finished(again)["status"] == "SUCCEEDED", cloud.task_errors(again)
    first_package, second_package = cloud.packages()
    versions = [p["CustomerMetadataProperties"]["data_version"] for p in (first_package, second_package)]
    assert versions[0] == versions[1]
    # Each run trained its own model: two artifacts, two runs.
    urls = {
        p["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] for p in (first_package, second_package)
    }
    assert len(urls) == 2


def test_a_schema_change_fails_the_run_with_the_reason_notifies_registers_nothing_and_frees_the_family(
    cloud: Deployment,
) -> None:
    renamed = drop_text(ROWS, seed=2).replace("tenure_months", "tenure_days", 1)
    [execution] = cloud.drop(DROP, renamed)
    finished = cloud.finished(execution)
    assert (finished["status"], finished["error"]) == ("FAILED", "JobFailed")
    assert "AlgorithmError" in finished["cause"] and DROP in finished["cause"]
    entered = cloud.states_entered(execution)
    assert entered[-3:] == ["Notify the failure", "Release the lock after the failure", "Retraining failed"]
    assert "Start the training" not in entered
    [notified] = cloud.notifications()
    assert notified["event"] == "retraining_failed"
    assert (notified["execution_id"], notified["error"]) == (execution, "JobFailed")
    assert DROP in notified["cause"]
    assert cloud.packages() == []
    assert cloud.lock_holder() is None


def test_a_second_retraining_while_one_runs_ends_without_running(cloud: Deployment) -> None:
    cloud.drop(DROP, drop_text(ROWS, seed=1))
    [first] = [e["executionArn"] for e in cloud.executions()]
    with cloud.jobs.hold():
        # The first run's preprocessing cannot start, so it holds the family throughout.
        wait_until(lambda: cloud.lock_holder() == first, f"{first} taking the lock", LOCK_DEADLINE_SECONDS)
        second = cloud.start(manual(cloud))
        ended = cloud.finished(second)
    assert ended["status"] == "SUCCEEDED"
    assert cloud.states_entered(second)[-2:] == ["Is the lock ours?", "Already retraining"]
    assert cloud.output(second)["lock"] == {
        "taken": False,
        "key": f"retraining#{cloud.family}",
        "holder": first,
    }
    assert cloud.finished(first)["status"] == "SUCCEEDED", cloud.task_errors(first)
    assert len(cloud.packages()) == 1
    assert cloud.lock_holder() is None


def test_an_endpoints_drift_alarm_going_to_alarm_retrains_its_family(cloud: Deployment) -> None:
    [endpoint] = [e for e in load_config("local").endpoints if e.model_family == cloud.family]
    name = f"mlrollout-local-{endpoint.name}-input-drift"
    arn = f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
    assert cloud.alarm(arn, name, "OK") == []
    [execution] = cloud.alarm(arn, name, "ALARM")
    assert cloud.execution_input(execution) == {
        "model_family": cloud.family,
        "trigger": {"kind": "drift_alarm", "detail": {"endpoint": endpoint.name, "alarm": name}},
    }
    # No data under the family's prefix yet: the run fails at preprocessing and frees the family.
    ended = cloud.finished(execution)
    assert (ended["status"], ended["error"]) == ("FAILED", "JobFailed")
    assert cloud.lock_holder() is None


def test_a_failure_whose_notification_cannot_be_sent_still_frees_the_family(cloud: Deployment) -> None:
    topic_arn = cloud.topic_arn()
    boto3.client("sns").delete_topic(TopicArn=topic_arn)
    renamed = drop_text(ROWS, seed=2).replace("tenure_months", "tenure_days", 1)
    [execution] = cloud.drop(DROP, renamed)
    finished = cloud.finished(execution)
    assert (finished["status"], finished["error"]) == ("FAILED", "JobFailed")
    entered = cloud.states_entered(execution)
    assert entered[-3:] == ["Notify the failure", "Release the lock after the failure", "Retraining failed"]
    assert cloud.input_of_state(execution, "Release the lock after the failure")["notify_error"]["Error"]
    assert cloud.lock_holder() is None
