"""Real model artifacts for the golden gate: trained once per process, served by the real inference server.

`GOOD` is the model a package's golden cases were computed from; `OTHER` is a model trained with another
seed: it labels the golden cases alike but answers them with other class probabilities, as a package
whose artifact is not the model its gate files describe would. The golden cases carry `GOOD`'s
probabilities, so the golden gate (tolerance 1e-6) passes on `GOOD` and fails on `OTHER`.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any, Literal

from pipelines.gate_files import evaluate_model
from pipelines.train import TrainConfig, package_model, train

ModelName = Literal["good", "other"]
GOOD: ModelName = "good"
OTHER: ModelName = "other"
SEEDS: dict[ModelName, int] = {GOOD: 5, OTHER: 6}
SAMPLES = 1500


@functools.cache
def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="golden-models-"))


@functools.cache
def model_dir(name: ModelName) -> Path:
    directory = _scratch() / name
    train(TrainConfig("logistic", seed=SEEDS[name], samples=SAMPLES, model_version=f"test-{name}"), directory)
    return directory


@functools.cache
def model_archive(name: ModelName) -> bytes:
    """``model.tar.gz`` of the model, as a package's artifact holds it."""
    return package_model(model_dir(name), _scratch() / f"{name}.tar.gz").read_bytes()


@functools.cache
def golden_document() -> dict[str, Any]:
    """``golden.json``: the default golden cases, each with `GOOD`'s label and class probabilities."""
    documents = evaluate_model(model_dir(GOOD))
    cases = []
    for case in documents.golden.cases:
        output = documents.golden_outputs[case.case_id]
        cases.append(
            case.model_dump(mode="json")
            | {"expected_label": output.label, "expected_probabilities": list(output.probabilities or ())}
        )
    return {"cases": cases}


@functools.cache
def golden_outputs_document() -> dict[str, Any]:
    """``golden_outputs.json`` as the evaluation step wrote it for `GOOD` (the gate no longer reads it)."""
    documents = evaluate_model(model_dir(GOOD))
    return {case: output.model_dump(mode="json") for case, output in documents.golden_outputs.items()}


def put_model(s3: Any, bucket: str, folder: str, name: ModelName = GOOD) -> str:
    """The model's archive at ``<folder>/model.tar.gz`` and its golden cases under ``<folder>/gates/``;
    the artifact's ``s3://`` URL."""
    s3.put_object(Bucket=bucket, Key=f"{folder}/model.tar.gz", Body=model_archive(name))
    for file_name, document in (
        ("golden.json", golden_document()),
        ("golden_outputs.json", golden_outputs_document()),
    ):
        s3.put_object(Bucket=bucket, Key=f"{folder}/gates/{file_name}", Body=json.dumps(document).encode())
    return f"s3://{bucket}/{folder}/model.tar.gz"
