"""The three jobs of a retraining run: their names, where they read and write, and their requests.

S3 layout of one run (``<run>`` is the run's id, ``<training job>`` the training job's name)::

    s3://<data bucket>/<family>/...                               every data drop (input of preprocess)
    s3://<artifacts>/retraining/<family>/<run>/train/             train.csv + manifest.json (preprocess)
    s3://<artifacts>/retraining/<family>/<run>/model/<training job>/output/model.tar.gz   (training)
    s3://<artifacts>/retraining/<family>/<run>/model/<training job>/output/gates/...       (evaluation)
    s3://<artifacts>/retraining/<family>/<run>/model/<training job>/output/evaluation.json
    s3://<artifacts>/retraining/<family>/<run>/model/<training job>/output/data-manifest.json

The gate files land in ``gates/`` beside ``model.tar.gz``, where the rollout's gates look for them.
One image runs all three steps: preprocess and evaluate as Processing jobs with an explicit entrypoint,
training through the image's ``train`` program. Every path in a request is under ``/opt/ml/``.

Pure domain code: the requests are plain dicts in the shape of SageMaker's API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.retraining.evaluation import DATA_MANIFEST_FILE, EVALUATION_FILE
from lambdas.retraining.settings import RetrainingSettings
from lambdas.retraining.state import JobStep, RetrainingState

__all__ = [
    "ARTIFACTS_PREFIX",
    "JobFailed",
    "RunLayout",
    "evaluation_request",
    "job_name",
    "job_status",
    "preprocess_request",
    "training_request",
]

ARTIFACTS_PREFIX = "retraining"
MODEL_ARCHIVE = "model.tar.gz"
GATES_FOLDER = "gates"
# Job names keep the "<prefix>-<family>" stem's first 40 characters: with "-train-" and the 12-character
# run id they stay within SageMaker's 63, and IAM allows exactly "<stem>-*".
JOB_NAME_STEM_MAX = 40
STEP_NAMES: dict[JobStep, str] = {"preprocess": "prep", "train": "train", "evaluate": "eval"}
PROCESSING = "/opt/ml/processing"
DATA_DIR = f"{PROCESSING}/input/data"
TRAIN_OUTPUT_DIR = f"{PROCESSING}/output/train"
MODEL_INPUT_DIR = f"{PROCESSING}/input/model"
TRAIN_INPUT_DIR = f"{PROCESSING}/input/train"
EVALUATION_OUTPUT_DIR = f"{PROCESSING}/output/evaluation"
# SageMaker's own statuses: a job still running, and the ones that end it without a model.
RUNNING_STATUSES = frozenset({"InProgress", "Stopping"})
UNSUCCESSFUL_STATUSES = frozenset({"Failed", "Stopped"})


class JobFailed(Exception):
    """A job of the run ended without its output; the message carries SageMaker's reason."""


def job_name_stem(name_prefix: str, family: str) -> str:
    """What every job name of this environment's family starts with (before "-<step>-<run>")."""
    return f"{name_prefix}-{family}"[:JOB_NAME_STEM_MAX].rstrip("-")


def job_name(name_prefix: str, family: str, step: JobStep, run_id: str) -> str:
    return f"{job_name_stem(name_prefix, family)}-{STEP_NAMES[step]}-{run_id}"


@dataclass(frozen=True)
class RunLayout:
    """Where one run's data and artifacts are, as S3 URIs (folders end with "/")."""

    data_bucket: str
    artifacts_bucket: str
    family: str
    run_id: str

    @property
    def data(self) -> str:
        return f"s3://{self.data_bucket}/{self.family}/"

    @property
    def run(self) -> str:
        return f"s3://{self.artifacts_bucket}/{ARTIFACTS_PREFIX}/{self.family}/{self.run_id}/"

    @property
    def train(self) -> str:
        return f"{self.run}train/"

    @property
    def model_output(self) -> str:
        """The training job's S3OutputPath: SageMaker adds "<job>/output/model.tar.gz"."""
        return f"{self.run}model/"

    def job_output(self, training_job: str) -> str:
        return f"{self.model_output}{training_job}/output/"

    def model_archive(self, training_job: str) -> str:
        return f"{self.job_output(training_job)}{MODEL_ARCHIVE}"

    def evaluation_report(self, training_job: str) -> str:
        return f"{self.job_output(training_job)}{EVALUATION_FILE}"

    def data_manifest(self, training_job: str) -> str:
        return f"{self.job_output(training_job)}{DATA_MANIFEST_FILE}"

    def gates(self, training_job: str) -> str:
        return f"{self.job_output(training_job)}{GATES_FOLDER}/"


def layout(state: RetrainingState, settings: RetrainingSettings) -> RunLayout:
    return RunLayout(settings.data_bucket, settings.artifacts_bucket, state.model_family, state.run_id)


def _processing_job(
    name: str,
    *,
    settings: RetrainingSettings,
    module: str,
    arguments: list[str],
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
) -> dict[str, Any]:
    jobs = settings.jobs
    return {
        "ProcessingJobName": name,
        "RoleArn": settings.sagemaker_role_arn,
        "AppSpecification": {
            "ImageUri": jobs.image_uri,
            "ContainerEntrypoint": ["python3", "-m", module],
            "ContainerArguments": arguments,
        },
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": outputs},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": jobs.processing_instance_type,
                "VolumeSizeInGB": jobs.volume_size_gb,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": jobs.max_runtime_seconds},
    }


def _input(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }


def _output(name: str, uri: str, local_path: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": uri, "LocalPath": local_path, "S3UploadMode": "EndOfJob"},
    }


def preprocess_request(state: RetrainingState, settings: RetrainingSettings) -> dict[str, Any]:
    """CreateProcessingJob: validate every CSV of the family, write train.csv and the data manifest."""
    where = layout(state, settings)
    name = job_name(settings.jobs.name_prefix, state.model_family, "preprocess", state.run_id)
    return _processing_job(
        name,
        settings=settings,
        module="pipelines.preprocess",
        arguments=["--data-dir", DATA_DIR, "--out-dir", TRAIN_OUTPUT_DIR],
        inputs=[_input("data", where.data, DATA_DIR)],
        outputs=[_output("train", where.train, TRAIN_OUTPUT_DIR)],
    )


def model_version(state: RetrainingState) -> str:
    return f"{state.model_family}-{state.run_id}"


def training_request(state: RetrainingState, settings: RetrainingSettings) -> dict[str, Any]:
    """CreateTrainingJob: the image's train program on the run's train.csv; hyperparameters are strings."""
    where = layout(state, settings)
    jobs = settings.jobs
    return {
        "TrainingJobName": job_name(jobs.name_prefix, state.model_family, "train", state.run_id),
        "RoleArn": settings.sagemaker_role_arn,
        "AlgorithmSpecification": {"TrainingImage": jobs.image_uri, "TrainingInputMode": "File"},
        "HyperParameters": {
            "recipe": jobs.recipe,
            "seed": str(jobs.seed),
            "model_version": model_version(state),
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": where.train,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": where.model_output},
        "ResourceConfig": {
            "InstanceType": jobs.training_instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": jobs.volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": jobs.max_runtime_seconds},
    }


def training_job_of(state: RetrainingState) -> str:
    if "train" not in state.jobs:
        raise ValueError(f"retraining {state.execution_id} has no training job yet")
    return state.jobs["train"]


def evaluation_request(state: RetrainingState, settings: RetrainingSettings) -> dict[str, Any]:
    """CreateProcessingJob: gate files, evaluation.json and the manifest, written beside model.tar.gz."""
    where = layout(state, settings)
    trained = training_job_of(state)
    name = job_name(settings.jobs.name_prefix, state.model_family, "evaluate", state.run_id)
    arguments = ["--model-dir", MODEL_INPUT_DIR, "--train-dir", TRAIN_INPUT_DIR]
    return _processing_job(
        name,
        settings=settings,
        module="pipelines.evaluate",
        arguments=[*arguments, "--out-dir", EVALUATION_OUTPUT_DIR],
        inputs=[
            _input("model", state.model_data_url or where.model_archive(trained), MODEL_INPUT_DIR),
            _input("train", where.train, TRAIN_INPUT_DIR),
        ],
        outputs=[_output("evaluation", where.job_output(trained), EVALUATION_OUTPUT_DIR)],
    )


def job_status(step: JobStep, name: str, description: Mapping[str, Any]) -> str:
    """The status the state machine reads ("InProgress" or "Completed") from a Describe*Job answer;
    JobFailed with SageMaker's reason when the job ended without its output."""
    key = "TrainingJobStatus" if step == "train" else "ProcessingJobStatus"
    status = str(description.get(key, ""))
    if status in RUNNING_STATUSES:
        return "InProgress"
    if status == "Completed":
        return "Completed"
    if status in UNSUCCESSFUL_STATUSES:
        reason = description.get("FailureReason") or description.get("ExitMessage") or "no reason given"
        raise JobFailed(f"{step} job {name} {status.lower()}: {reason}")
    raise JobFailed(f"{step} job {name} has an unknown status {status!r}")
