"""What the retraining tests share: settings as the stack passes them, a state at each step, a report."""

from __future__ import annotations

import json
from typing import Any

from lambdas.retraining.evaluation import EvaluationReport, GoldenCheck
from lambdas.retraining.settings import RetrainingSettings, load_retraining_settings
from lambdas.retraining.state import JobRecord, LockStatus, RetrainingState, Trigger, run_id_for

FAMILY = "churn-classifier"
GROUP = "mlrollout-dev-churn-classifier"
DATA_BUCKET = "mlrollout-dev-training-data"
ARTIFACTS_BUCKET = "mlrollout-dev-artifacts"
LOCK_TABLE = "mlrollout-dev-locks"
ROLE_ARN = "arn:aws:iam::123456789012:role/mlrollout-dev-retraining-jobs"
TRAINING_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlrollout-training:0.1.0"
INFERENCE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlrollout-inference:0.1.0"
EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:mlrollout-dev-retraining:run-1"
DATA_VERSION = "ab" * 32
METRICS = {"accuracy": 0.91, "precision": 0.8, "recall": 0.7, "f1": 0.75, "auc": 0.95}


def environment(**overrides: str) -> dict[str, str]:
    """The functions' environment as infra/retraining_workflow.py sets it (tokens resolved)."""
    jobs = {
        "name_prefix": "mlrollout-dev",
        "image_uri": TRAINING_IMAGE,
        "recipe": "logistic",
        "seed": 1,
        "processing_instance_type": "ml.m5.large",
        "training_instance_type": "ml.m5.xlarge",
        "volume_size_gb": 30,
        "max_runtime_minutes": 60,
    }
    families = {
        FAMILY: {
            "model_package_group": GROUP,
            "inference_image": INFERENCE_IMAGE,
            "gates": {"minimum_metrics": {"accuracy": 0.7, "auc": 0.75}},
        }
    }
    return {
        "LOCK_TABLE": LOCK_TABLE,
        "DATA_BUCKET": DATA_BUCKET,
        "ARTIFACTS_BUCKET": ARTIFACTS_BUCKET,
        "SAGEMAKER_ROLE_ARN": ROLE_ARN,
        "AUTO_APPROVE": "true",
        "JOBS": json.dumps(jobs),
        "FAMILIES": json.dumps(families),
    } | overrides


def settings(**overrides: str) -> RetrainingSettings:
    return load_retraining_settings(environment(**overrides))


def state(**update: Any) -> RetrainingState:
    """A started run (its lock taken) with the given fields filled in."""
    started = RetrainingState(
        model_family=FAMILY,
        trigger=Trigger(kind="new_data", detail={"key": f"{FAMILY}/2026-11-25/part-0.csv"}),
        execution_id=EXECUTION_ID,
        run_id=run_id_for(EXECUTION_ID),
        lock=LockStatus(taken=True, key=f"retraining#{FAMILY}", holder=EXECUTION_ID),
    )
    return started.model_copy(update=update)


def trained_state(training_job: str = "mlrollout-dev-churn-classifier-train-0123456789ab") -> RetrainingState:
    return state(
        jobs={"preprocess": "p", "train": training_job},
        job=JobRecord(step="train", name=training_job, status="Completed"),
    )


def report(**update: Any) -> EvaluationReport:
    fields: dict[str, Any] = {
        "model_version": "churn-classifier-0123456789ab",
        "recipe": "logistic",
        "hyperparameters": {"C": 1.0, "max_iter": 1000},
        "metrics": dict(METRICS),
        "data_version": DATA_VERSION,
        "data_objects": 2,
        "training_rows": 1200,
        "code_version": "0.1.0+0123456789ab",
        "golden_check": GoldenCheck(passed=True, detail="2 golden cases reproduced"),
    } | update
    return EvaluationReport.model_validate(fields)
