"""SageMaker training and processing jobs on moto, run for real as local processes.

moto 5.2.5 records CreateTrainingJob and CreateProcessingJob and calls them `Completed` at once, running
nothing and writing nothing; it has no StopTrainingJob. While `run_jobs_locally` is open, moto's
SageMaker backend (in-process calls under `mock_aws` and calls through a `ThreadedMotoServer` of the same
process alike) runs each new job as SageMaker would run the container, as a process of this machine with
SageMaker's file layout under a scratch root (``<scratch>/<job>/opt/ml/...``):

* **Inputs** are read from moto's S3: for an `S3Prefix` data source every object under the prefix, at
  its key relative to the prefix's folder (``s3://b/fam/`` puts ``fam/2026/part.csv`` at
  ``2026/part.csv``; an object URI puts the object under its own name), as SageMaker's File mode does.
  A prefix with no object fails the job (``ClientError: ...``), as SageMaker does.
* **Training** (`CreateTrainingJob`): channels go to ``/opt/ml/input/data/<channel>``, the config files
  to ``/opt/ml/input/config`` (``hyperparameters.json`` with the job's string hyperparameters,
  ``inputdataconfig.json``, ``resourceconfig.json`` for one host ``algo-1``). The program is the
  training image's ``train`` (``containers/training/train``) with `python3` on `PATH` being this
  interpreter, or `AlgorithmSpecification.ContainerEntrypoint` + `ContainerArguments` when given
  (mapped as for processing). When it exits 0 the model directory is tarred to
  ``<S3OutputPath>/<job>/output/model.tar.gz`` (and a non-empty ``/opt/ml/output/data`` to
  ``output.tar.gz`` beside it), and `ModelArtifacts.S3ModelArtifacts` names it.
* **Processing** (`CreateProcessingJob`): each `ProcessingInput`'s `S3Input` goes to its `LocalPath`,
  each `ProcessingOutput`'s `LocalPath` is created empty; the command is
  `AppSpecification.ContainerEntrypoint` + `ContainerArguments` with `python3`/`python` replaced by this
  interpreter and every argument that starts with ``/opt/ml/`` moved under the scratch root. When it
  exits 0 every file under each output's local path is uploaded to its `S3Uri` (relative paths kept).
* **The environment** of the process is this process's, then the job's `Environment`, then
  `SM_MODEL_DIR`, `SM_CHANNEL_<NAME>`, `SM_INPUT_CONFIG_DIR`, `SM_OUTPUT_DIR` and `SM_OUTPUT_DATA_DIR`
  pointing into the scratch root (in SageMaker's own containers the training toolkit sets these; here
  they are how a program that defaults to ``/opt/ml`` finds the scratch root), `PYTHONPATH` naming the
  project, `PATH` starting with the interpreter's ``python3``.
* **Status.** The job runs in a background thread: Describe* shows `InProgress` (training's
  `SecondaryStatus` `Starting`, `Downloading`, `Training`, `Uploading`, each in
  `SecondaryStatusTransitions`) until it ends, then `Completed`, or `Failed` with `FailureReason`
  ``AlgorithmError: <reason>``: the reason is ``/opt/ml/output/failure`` (training) or
  ``/opt/ml/output/message`` (processing) when the program wrote one, else the last lines of its stderr;
  for processing it is also the `ExitMessage`. SageMaker cuts the reason to 1 KB; so does this. An input
  that cannot be read (no object under the prefix, a missing bucket, a key with an empty, ``.`` or
  ``..`` part below the prefix) fails the job before its program runs, with ``ClientError: ...``.
  StopTrainingJob and StopProcessingJob of a job in progress set `Stopping`, end the process (SIGTERM
  to its process group, SIGKILL after `STOP_GRACE_S`) and then `Stopped`; stopping a job that has ended
  is a `ValidationException` (SageMaker's wording for it was not checked).
* **Names.** A job name must match SageMaker's pattern (letters, digits, hyphens; 63 at most) and be
  new in the account and region (moto itself would overwrite the old job): both `ValidationException`.
* Every job's stdout and stderr are kept in ``<scratch>/<job>/stdout.log`` and ``stderr.log``. One
  runner at a time per process (a second `run_jobs_locally` while one is open is a `LocalJobError`).

`LocalJobs.wait(name)` blocks until a job has ended and gives its final status (a test's way to await
one); `LocalJobs.job(name)` gives its scratch paths and logs; while `LocalJobs.hold()` is open, new jobs
wait before they start (`InProgress`, `Starting`), so that a test sees a job in progress, or stops it, for
certain. Closing the context stops the jobs still running and, when the scratch root was a temporary one,
removes it. Use it inside moto's mock, or as a gap filler of
`localcloud.cloud.LocalCloud`::

    with mock_aws(), run_jobs_locally() as jobs:
        sagemaker.create_training_job(TrainingJobName="t1", ...)
        assert jobs.wait("t1") == "Completed"

    LocalCloud(..., gap_fillers={"sagemaker_jobs": lambda cloud: run_jobs_locally()})

Not faithful, and said here rather than faked: the image named in the request is not pulled (the
training program and the processing command come from this checkout, the "image" being the project's
``containers/training``); instance types and counts, VPC and network isolation, `MaxRuntimeInSeconds`,
spot training, checkpoints, metric definitions and CloudWatch logs are not emulated (the fake metrics
moto adds are removed); input modes other than File, data types other than `S3Prefix`, processing
inputs from dataset definitions and `Continuous` upload are refused with a `ValidationException` naming
them rather than ignored.
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
from moto.sagemaker.models import FakeTrainingJob, SageMakerModelBackend
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
        record.secondary_status_transitions = []
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
