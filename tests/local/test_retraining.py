"""`make demo-retrain`'s story as a test: new data retrains the family and the result rolls out; a schema
change fails the retraining and changes nothing.

One run (about 3 minutes on 2 cores): the `local` stack on the local cloud, SageMaker's jobs as local
processes of the training image's programs, simulated users on v1 throughout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.gates import CLASSIFICATION_METRICS
from localcloud.demo import retraining as retraining_demo
from localcloud.demo.story import Story
from pipelines.data_version import manifest_of_dir
from tests.infra.conftest import shared_outdir


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    outdir = shared_outdir(tmp_path_factory, "local")
    return retraining_demo.run(outdir, tmp_path_factory.mktemp("report") / "retrain-report.html")


def test_a_data_drop_retrains_and_registers_a_package_with_its_provenance(
    story: Story, tmp_path: Path
) -> None:
    retrained = story.retrainings[0]
    assert retrained["status"] == "SUCCEEDED"
    metadata = retrained["metadata"]
    # The data version is the drop's content hash, as anyone can recompute it from the same files.
    drop = tmp_path / retrained["key"].split("/", 1)[1]
    drop.parent.mkdir(parents=True)
    drop.write_bytes(retraining_demo.drop_csv(retraining_demo.DROP_ROWS, retraining_demo.DROP_SEED))
    assert metadata["data_version"] == manifest_of_dir(tmp_path).data_version
    assert metadata["data_objects"] == "1"
    assert metadata["training_rows"] == str(retraining_demo.DROP_ROWS)
    assert metadata["code_version"].startswith("0.1.0+")
    assert metadata["data_manifest"].endswith("/output/data-manifest.json")
    assert {f"metric.{name}" for name in CLASSIFICATION_METRICS} <= set(metadata)
    assert 0.7 <= float(metadata["metric.accuracy"]) <= 1.0
    assert any(key.startswith("hp.") for key in metadata)


def test_the_retrained_package_rolls_out_through_the_rollout_workflow(story: Story) -> None:
    [rollout] = story.rollouts
    assert rollout["version"] == "retrained"
    assert rollout["outcome"] == "promoted"
    assert rollout["steps_percent"] == [25.0, 50.0]
    assert int(str(rollout["challenger_requests"])) > 0
    assert story.failed_requests == 0


def test_a_schema_change_fails_the_retraining_and_leaves_the_champion_untouched(story: Story) -> None:
    refused = story.retrainings[1]
    assert refused["status"] == "FAILED"
    assert "schema change" in refused["reason"]
    assert "support_calls" in refused["reason"]
    assert refused["registered"] == 0
    assert refused["champion_untouched"] is True
    assert refused["notifications"] >= 1
