"""Jobs built from moto's records: the training image's programs, their arguments, environment and paths."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend

from localcloud.sagemaker.job_models import (
    CONTAINER_ROOT,
    HOST,
    PROCESSING_ROOT,
    PROJECT_ROOT,
    PYTHON_NAMES,
    TRAIN_PROGRAM,
    LocalJob,
    S3Download,
    S3Upload,
)
from localcloud.sagemaker.job_processes import LocalJobs


def _base_environment(job_environment: Mapping[str, str] | None) -> dict[str, str]:
    environment = {**os.environ, **(job_environment or {})}
    python_path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), python_path) if p)
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def _check_s3_source(source: Mapping[str, Any], where: str) -> str:
    data_type = source.get("S3DataType", "S3Prefix")
    if data_type != "S3Prefix":
        raise ValidationError(message=f"{where}: S3DataType {data_type} is not run locally (S3Prefix only)")
    uri = str(source.get("S3Uri", ""))
    if not uri.startswith("s3://"):
        raise ValidationError(message=f"{where}: S3Uri {uri!r} is not an s3:// URI")
    return uri


def training_job(runner: LocalJobs, record: Any, backend: SageMakerModelBackend) -> Callable[[], LocalJob]:
    return lambda: _training_job(runner, record, backend.account_id, backend.region_name)


def processing_job(runner: LocalJobs, record: Any, backend: SageMakerModelBackend) -> Callable[[], LocalJob]:
    return lambda: _processing_job(runner, record, backend.account_id, backend.region_name)


def _training_job(runner: LocalJobs, record: Any, account_id: str, region: str) -> LocalJob:
    """The local run of a training job moto has just recorded (raises ValidationError on what it lacks)."""
    work_dir = _fresh_work_dir(runner, record.training_job_name)
    job = LocalJob(
        kind="training",
        name=record.training_job_name,
        account_id=account_id,
        region=region,
        work_dir=work_dir,
        command=[str(TRAIN_PROGRAM)],
        environment={},
        downloads=[],
        uploads=[],
        record=record,
    )
    specification = record.algorithm_specification or {}
    if specification.get("AlgorithmName"):
        raise ValidationError(message="AlgorithmSpecification.AlgorithmName is not run locally (images only)")
    entrypoint = [str(part) for part in specification.get("ContainerEntrypoint") or []]
    arguments = [str(part) for part in specification.get("ContainerArguments") or []]
    if arguments and not entrypoint:
        raise ValidationError(
            message="AlgorithmSpecification.ContainerArguments without ContainerEntrypoint is not run locally"
        )
    if entrypoint:  # SageMaker runs these instead of the image's `train`
        job.command = [_local_argument(job, part, program=i == 0) for i, part in enumerate(entrypoint)]
        job.command += [_local_argument(job, part) for part in arguments]
    mode = specification.get("TrainingInputMode", "File")
    input_config: dict[str, dict[str, str]] = {}
    channels: dict[str, str] = {}
    for channel in record.input_data_config or []:
        name = str(channel["ChannelName"])
        where = f"InputDataConfig channel {name}"
        channel_mode = channel.get("InputMode", mode)
        if channel_mode != "File":
            raise ValidationError(
                message=f"{where}: input mode {channel_mode} is not run locally (File only)"
            )
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            raise ValidationError(message=f"{where}: only S3DataSource is run locally")
        uri = _check_s3_source(source, where)
        path = job.local(f"/opt/ml/input/data/{name}")
        job.downloads.append(S3Download(uri, path))
        channels[name] = str(path)
        input_config[name] = {
            "ContentType": str(channel.get("ContentType", "")),
            "TrainingInputMode": str(channel_mode),
            "S3DistributionType": str(source.get("S3DataDistributionType", "FullyReplicated")),
            "RecordWrapperType": str(channel.get("RecordWrapperType", "None")),
        }
    config_dir = job.local("/opt/ml/input/config")
    config_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "hyperparameters.json": dict(record.hyper_parameters or {}),
        "inputdataconfig.json": input_config,
        "resourceconfig.json": {"current_host": HOST, "hosts": [HOST], "network_interface_name": "eth0"},
    }
    for file_name, content in files.items():
        (config_dir / file_name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    for folder in ("/opt/ml/model", "/opt/ml/output/data"):
        job.local(folder).mkdir(parents=True, exist_ok=True)
    job.environment = {
        **_base_environment(record.environment),
        "SM_MODEL_DIR": str(job.local("/opt/ml/model")),
        "SM_INPUT_CONFIG_DIR": str(config_dir),
        "SM_OUTPUT_DIR": str(job.local("/opt/ml/output")),
        "SM_OUTPUT_DATA_DIR": str(job.local("/opt/ml/output/data")),
        **{f"SM_CHANNEL_{name.upper()}": path for name, path in channels.items()},
    }
    return job


def _processing_job(runner: LocalJobs, record: Any, account_id: str, region: str) -> LocalJob:
    """The local run of a processing job moto has just recorded (raises ValidationError on what it lacks)."""
    work_dir = _fresh_work_dir(runner, record.processing_job_name)
    app = record.app_specification or {}
    entrypoint = [str(part) for part in app.get("ContainerEntrypoint") or []]
    if not entrypoint:
        raise ValidationError(
            message="AppSpecification.ContainerEntrypoint is needed to run a processing job locally "
            "(the image's own entrypoint is not known here)"
        )
    arguments = [str(part) for part in app.get("ContainerArguments") or []]
    job = LocalJob(
        kind="processing",
        name=record.processing_job_name,
        account_id=account_id,
        region=region,
        work_dir=work_dir,
        command=[],
        environment={},
        downloads=[],
        uploads=[],
        record=record,
    )
    job.command = [_local_argument(job, part, program=index == 0) for index, part in enumerate(entrypoint)]
    job.command += [_local_argument(job, part) for part in arguments]
    for processing_input in record.processing_inputs or []:
        where = f"ProcessingInput {processing_input.get('InputName')}"
        source = processing_input.get("S3Input")
        if not source:
            raise ValidationError(message=f"{where}: only S3Input is run locally (no dataset definitions)")
        if source.get("S3InputMode", "File") != "File":
            raise ValidationError(message=f"{where}: S3InputMode {source['S3InputMode']} is not run locally")
        uri = _check_s3_source(source, where)
        job.downloads.append(S3Download(uri, _processing_path(job, str(source.get("LocalPath", "")), where)))
    for output in (record.processing_output_config or {}).get("Outputs", []):
        where = f"ProcessingOutput {output.get('OutputName')}"
        target = output.get("S3Output")
        if not target:
            raise ValidationError(message=f"{where}: only S3Output is run locally")
        if target.get("S3UploadMode", "EndOfJob") != "EndOfJob":
            raise ValidationError(
                message=f"{where}: S3UploadMode {target['S3UploadMode']} is not run locally"
            )
        local_path = _processing_path(job, str(target.get("LocalPath", "")), where)
        local_path.mkdir(parents=True, exist_ok=True)
        uri = str(target.get("S3Uri", ""))
        if not uri.startswith("s3://"):
            raise ValidationError(message=f"{where}: S3Uri {uri!r} is not an s3:// URI")
        job.uploads.append(S3Upload(local_path, uri))
    config_dir = job.local("/opt/ml/config")
    config_dir.mkdir(parents=True, exist_ok=True)
    resource = {"current_host": HOST, "hosts": [HOST]}
    (config_dir / "resourceconfig.json").write_text(json.dumps(resource) + "\n", encoding="utf-8")
    job.local("/opt/ml/output").mkdir(parents=True, exist_ok=True)
    job.environment = {
        **_base_environment(record.environment),
        "SM_OUTPUT_DIR": str(job.local("/opt/ml/output")),
        "SM_OUTPUT_DATA_DIR": str(job.local("/opt/ml/output/data")),
    }
    return job


def _fresh_work_dir(runner: LocalJobs, name: str) -> Path:
    """``<scratch>/<job>``, emptied of what an earlier run with a kept scratch root left there."""
    work_dir = runner.scratch / name
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    return work_dir


def _local_argument(job: LocalJob, argument: str, *, program: bool = False) -> str:
    if program and argument in PYTHON_NAMES:
        return sys.executable
    if argument.startswith(CONTAINER_ROOT):
        return str(job.local(argument))
    return argument


def _processing_path(job: LocalJob, container_path: str, where: str) -> Path:
    posix = PurePosixPath(container_path)
    if not container_path.startswith(PROCESSING_ROOT) or ".." in posix.parts:
        raise ValidationError(
            message=f"{where}: LocalPath {container_path!r} must be under {PROCESSING_ROOT}"
        )
    return job.local(container_path)
