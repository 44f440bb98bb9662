"""SageMaker training and processing jobs on moto, run for real as local processes: `run_jobs_locally`
and the moto methods it replaces. What is run, and how: README.md.
"""

from __future__ import annotations

import inspect
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import moto
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeProcessingJob, FakeTrainingJob, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from localcloud.sagemaker.job_builders import processing_job, training_job
from localcloud.sagemaker.job_models import (
    JOB_NAME,
    LocalJob,
    LocalJobError,
    MotoChangedError,
)
from localcloud.sagemaker.job_processes import LocalJobs, set_status

# The moto version whose SageMaker backend this module wraps (checked by `check_moto`).
MOTO_VERSION = "5.2.5"

_MARK = "_runs_jobs_locally"


def check_moto() -> None:
    """Fails loudly when moto's job methods changed shape or moto started running jobs itself."""
    if getattr(SageMakerModelBackend.create_training_job, _MARK, False):
        raise LocalJobError("run_jobs_locally is open already in this process: one runner at a time")
    if hasattr(SageMakerResponse, "stop_training_job"):
        raise MotoChangedError(
            f"moto {moto.__version__} has StopTrainingJob: re-read localcloud.sagemaker.jobs, written for "
            f"moto {MOTO_VERSION}, which had none"
        )
    expected = {
        "create_training_job": ("self", "training_job_name", "hyper_parameters", "algorithm_specification"),
        "create_processing_job": ("self", "app_specification", "experiment_config", "network_config"),
        "stop_processing_job": ("self", "processing_job_name"),
    }
    for name, leading in expected.items():
        parameters = tuple(inspect.signature(getattr(SageMakerModelBackend, name)).parameters)
        if parameters[: len(leading)] != leading:
            raise MotoChangedError(
                f"moto {moto.__version__}: SageMakerModelBackend.{name}{parameters} is not the one of moto "
                f"{MOTO_VERSION} that localcloud.sagemaker.jobs wraps"
            )


def _bound(
    method: Callable[..., Any], backend: Any, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    bound = inspect.signature(method).bind(backend, *args, **kwargs)
    return dict(bound.arguments)


@contextmanager
def run_jobs_locally(scratch: Path | None = None) -> Iterator[LocalJobs]:
    """While open, moto's training and processing jobs run as local processes (see the module's doc).

    `scratch`: where the jobs' files go (kept on close); by default a temporary directory, removed.
    """
    check_moto()
    with tempfile.TemporaryDirectory(prefix="sagemaker-jobs-") as temporary:
        root = Path(scratch) if scratch is not None else Path(temporary)
        root.mkdir(parents=True, exist_ok=True)
        runner = LocalJobs(root)
        try:
            with (
                mock.patch.object(FakeTrainingJob, "__init__", _born_in_progress(FakeTrainingJob.__init__)),
                mock.patch.object(
                    FakeProcessingJob, "__init__", _born_in_progress(FakeProcessingJob.__init__)
                ),
                mock.patch.object(SageMakerModelBackend, "create_training_job", _create_training(runner)),
                mock.patch.object(SageMakerModelBackend, "create_processing_job", _create_processing(runner)),
                mock.patch.object(SageMakerModelBackend, "stop_processing_job", _stop_processing(runner)),
                mock.patch.object(
                    SageMakerResponse, "stop_training_job", _stop_training(runner), create=True
                ),
                mock.patch.object(
                    SageMakerResponse,
                    "create_training_job",
                    _keep_environment(SageMakerResponse.create_training_job),
                ),
                mock.patch.object(
                    SageMakerResponse,
                    "create_processing_job",
                    _keep_environment(SageMakerResponse.create_processing_job),
                ),
            ):
                yield runner
        finally:
            runner.close()


def _born_in_progress(original: Callable[..., None]) -> Callable[..., None]:
    """moto records a job `Completed`, and lists it so from the moment it is in its table: a caller listing
    jobs while the local run is being built would see a job ended before it ran."""

    def __init__(record: Any, *args: Any, **kwargs: Any) -> None:
        original(record, *args, **kwargs)
        if isinstance(record, FakeTrainingJob):
            record.training_job_status = "InProgress"
            record.secondary_status = "Starting"
            record.secondary_status_transitions = [{"Status": "Starting", "StartTime": utcnow()}]
        else:
            record.processing_job_status = "InProgress"

    return __init__


def _create_training(runner: LocalJobs) -> Callable[..., Any]:
    original = SageMakerModelBackend.create_training_job

    def create_training_job(backend: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        arguments = _bound(original, backend, args, kwargs)
        name = str(arguments["training_job_name"])
        _refuse_duplicate(runner, backend.training_jobs, name, "Training")
        requested = dict(arguments.get("algorithm_specification") or {})
        record: Any = original(backend, *args, **kwargs)
        # moto adds made-up metric definitions and results: the request's own are what SageMaker shows.
        record.algorithm_specification = requested
        record.final_metric_data_list = None
        record.model_artifacts = None
        record.training_end_time = None
        record.environment = _requested.environment
        _started(runner, backend, backend.training_jobs, name, training_job(runner, record, backend))
        return record

    setattr(create_training_job, _MARK, True)
    return create_training_job


def _create_processing(runner: LocalJobs) -> Callable[..., Any]:
    original = SageMakerModelBackend.create_processing_job

    def create_processing_job(backend: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        arguments = _bound(original, backend, args, kwargs)
        name = str(arguments["processing_job_name"])
        _refuse_duplicate(runner, backend.processing_jobs, name, "Processing")
        record: Any = original(backend, *args, **kwargs)
        record.processing_end_time = None
        record.environment = _requested.environment
        _started(runner, backend, backend.processing_jobs, name, processing_job(runner, record, backend))
        return record

    return create_processing_job


def _stop_processing(runner: LocalJobs) -> Callable[..., None]:
    original = SageMakerModelBackend.stop_processing_job

    def stop_processing_job(backend: SageMakerModelBackend, processing_job_name: str) -> None:
        if not runner.stop(backend.account_id, backend.region_name, "processing", processing_job_name):
            original(backend, processing_job_name)

    return stop_processing_job


def _stop_training(runner: LocalJobs) -> Callable[[SageMakerResponse], ActionResult]:
    def stop_training_job(response: SageMakerResponse) -> ActionResult:
        name = str(response._get_param("TrainingJobName"))
        backend = response.sagemaker_backend
        if name not in backend.training_jobs:
            arn = FakeTrainingJob.arn_formatter(name, backend.account_id, backend.region_name)
            raise ValidationError(message=f"Could not find training job '{arn}'.")
        if not runner.stop(backend.account_id, backend.region_name, "training", name):
            record = backend.training_jobs[name]
            record.training_job_status = record.secondary_status = "Stopped"
        return EmptyResult()

    return stop_training_job


def _keep_environment(
    original: Callable[[SageMakerResponse], ActionResult],
) -> Callable[[SageMakerResponse], ActionResult]:
    """moto's responses drop the request's Environment before the backend sees it: kept aside here."""

    def create(response: SageMakerResponse) -> ActionResult:
        _requested.environment = response._get_param("Environment")
        try:
            return original(response)
        finally:
            _requested.environment = None

    return create


class _RequestedEnvironment(threading.local):
    """The Environment of the Create* request this thread is answering."""

    environment: dict[str, str] | None = None


_requested = _RequestedEnvironment()


def _refuse_duplicate(runner: LocalJobs, existing: Mapping[str, Any], name: str, kind: str) -> None:
    if not JOB_NAME.match(name):
        raise ValidationError(
            message=f"{kind}JobName {name!r} must match {JOB_NAME.pattern} (letters, digits, hyphens)"
        )
    if name in existing:
        raise ValidationError(
            message=f"{kind} job names must be unique within an AWS account and region, and a "
            f"{kind.lower()} job with this name already exists ({name})"
        )
    if name in runner.names:
        raise ValidationError(
            message=f"a local job named {name} ran already: the local runner keeps one scratch "
            "directory per job name"
        )


def _started(
    runner: LocalJobs,
    backend: SageMakerModelBackend,
    table: dict[str, Any],
    name: str,
    build: Callable[[], LocalJob],
) -> None:
    """Builds the local run (a refusal removes moto's record again) and starts it."""
    try:
        job = build()
    except ValidationError:
        table.pop(name, None)
        raise
    now = utcnow()
    if isinstance(job.record, FakeTrainingJob):
        job.record.training_start_time = now
    else:
        job.record.processing_start_time = now
    set_status(job, "InProgress", "Starting")
    runner.start(job)
