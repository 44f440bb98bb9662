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

import contextlib
import inspect
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from unittest import mock
from urllib.parse import urlparse

import moto
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.s3.models import s3_backends
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeTrainingJob, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.utilities.utils import get_partition

# The moto version whose SageMaker backend this module wraps (checked by `check_moto`).
MOTO_VERSION = "5.2.5"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRAIN_PROGRAM = PROJECT_ROOT / "containers" / "training" / "train"
CONTAINER_ROOT = "/opt/ml/"
PROCESSING_ROOT = "/opt/ml/processing/"
HOST = "algo-1"
REASON_MAX_BYTES = 1024
STDERR_TAIL_LINES = 20
STOP_GRACE_S = 10.0
PYTHON_NAMES = ("python3", "python")

JobKind = Literal["training", "processing"]
# SageMaker's pattern for training and processing job names (which also keeps them inside the scratch root).
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_MARK = "_runs_jobs_locally"
ENDED = ("Completed", "Failed", "Stopped")


class MotoChangedError(RuntimeError):
    """moto's SageMaker jobs are no longer what this module wraps."""


class LocalJobError(RuntimeError):
    """A job cannot be found or awaited as asked; the message says why."""


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


# --- one job ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class S3Download:
    uri: str
    local_path: Path


@dataclass(frozen=True, slots=True)
class S3Upload:
    local_path: Path
    uri: str


@dataclass
class LocalJob:
    """A job run by this module: where its files are, and how it ended."""

    kind: JobKind
    name: str
    account_id: str
    region: str
    work_dir: Path
    command: list[str]
    environment: dict[str, str]
    downloads: list[S3Download]
    uploads: list[S3Upload]
    # moto's FakeTrainingJob or FakeProcessingJob: its attributes are the Describe* answer, set freely.
    record: Any
    ended: threading.Event = field(default_factory=threading.Event)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[bytes] | None = None
    returncode: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def root(self) -> Path:
        """The job's ``/opt/ml`` on this machine."""
        return self.work_dir / "opt" / "ml"

    @property
    def stdout_log(self) -> Path:
        return self.work_dir / "stdout.log"

    @property
    def stderr_log(self) -> Path:
        return self.work_dir / "stderr.log"

    @property
    def reason_file(self) -> Path:
        return self.root / "output" / ("failure" if self.kind == "training" else "message")

    @property
    def status(self) -> str:
        if isinstance(self.record, FakeTrainingJob):
            return str(self.record.training_job_status)
        return str(self.record.processing_job_status)

    def local(self, container_path: str) -> Path:
        """A container path under ``/opt/ml`` as this job's path on this machine."""
        return self.work_dir / container_path.lstrip("/")


class JobFailedError(Exception):
    """The job failed: ``reason`` is SageMaker's FailureReason, ``exit_message`` what the program said."""

    def __init__(self, reason: str, exit_message: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_message = exit_message


# --- the jobs while open ----------------------------------------------------------------------------------


class LocalJobs:
    """The jobs started while `run_jobs_locally` is open, by name."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self._jobs: dict[tuple[str, str, JobKind, str], LocalJob] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._gate = threading.Condition()
        self._held = False
        self._bin = scratch / ".bin"
        self._bin.mkdir(parents=True, exist_ok=True)
        for name in PYTHON_NAMES:
            shim = self._bin / name
            shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n', encoding="utf-8")
            shim.chmod(0o755)

    def job(self, name: str, kind: JobKind | None = None) -> LocalJob:
        """The job of that name (of any account and region; `kind` when both kinds share the name)."""
        with self._lock:
            found = [j for key, j in self._jobs.items() if key[3] == name and kind in (None, key[2])]
        if len(found) != 1:
            what = "no" if not found else "more than one"
            raise LocalJobError(f"{what} local job named {name!r}; known: {sorted(k[3] for k in self._jobs)}")
        return found[0]

    def wait(self, name: str, timeout: float | None = 300.0, kind: JobKind | None = None) -> str:
        """Blocks until the job has ended; its final status (`Completed`, `Failed` or `Stopped`)."""
        job = self.job(name, kind)
        if not job.ended.wait(timeout):
            raise LocalJobError(f"{job.kind} job {name} has not ended after {timeout} s: still {job.status}")
        return job.status

    @contextmanager
    def hold(self) -> Iterator[None]:
        """While open, jobs created do not start: they stay `InProgress` (`Starting`) until it closes
        or they are stopped, so that a caller can see a job in progress, or stop it, for certain."""
        with self._gate:
            self._held = True
        try:
            yield
        finally:
            with self._gate:
                self._held = False
                self._gate.notify_all()

    @property
    def names(self) -> list[str]:
        with self._lock:
            return [key[3] for key in self._jobs]

    # --- starting and stopping ------------------------------------------------------------------------

    def start(self, job: LocalJob) -> None:
        key = (job.account_id, job.region, job.kind, job.name)
        with self._lock:
            if self._closed:
                raise ValidationError(message="the local job runner is closed")
            self._jobs[key] = job
            thread = threading.Thread(
                target=self._run, args=(job,), name=f"sagemaker-{job.name}", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def stop(self, account_id: str, region: str, kind: JobKind, name: str) -> bool:
        """Asks a local job in progress to stop; False when this runner does not know the job."""
        with self._lock:
            job = self._jobs.get((account_id, region, kind, name))
        if job is None:
            return False
        with job.lock:
            if job.status in ENDED or job.stop_requested.is_set():
                raise ValidationError(
                    message=f"The {kind} job {name} is not in progress: its status is {job.status}."
                )
            job.stop_requested.set()
            _set_status(job, "Stopping", "Stopping")
            process = job.process
        self._wake()
        if process is not None:
            _terminate(process)
        return True

    def _wake(self) -> None:
        with self._gate:
            self._gate.notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
            threads = list(self._threads)
        for job in jobs:
            with job.lock:
                job.stop_requested.set()
                process = job.process
            if process is not None and process.poll() is None:
                _terminate(process)
        self._wake()
        for thread in threads:
            thread.join()

    # --- running --------------------------------------------------------------------------------------

    def _run(self, job: LocalJob) -> None:
        try:
            with self._gate:
                self._gate.wait_for(lambda: not self._held or job.stop_requested.is_set())
            if job.stop_requested.is_set():
                _finish(job, "Stopped")
                return
            self._download(job)
            self._execute(job)
            if job.stop_requested.is_set():
                _finish(job, "Stopped")
                return
            if job.returncode != 0:
                said = _program_reason(job)
                raise JobFailedError(f"AlgorithmError: {said}", said)
            _set_status(job, "InProgress", "Uploading")
            self._upload(job)
            _finish(job, "Completed")
        except JobFailedError as failure:
            status = "Stopped" if job.stop_requested.is_set() else "Failed"
            _finish(job, status, failure.reason, failure.exit_message)
        except Exception as error:  # a bug here must show on the job, not vanish with the thread
            _finish(job, "Failed", f"InternalServerError: the local job runner failed: {error!r}")

    def _download(self, job: LocalJob) -> None:
        _set_status(job, "InProgress", "Downloading")
        for download in job.downloads:
            objects = _list_objects(job.account_id, job.region, download.uri)
            if not objects:
                raise JobFailedError(f"ClientError: no S3 objects found under S3 URL {download.uri!r}")
            download.local_path.mkdir(parents=True, exist_ok=True)
            for relative, body in objects:
                target = download.local_path / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)

    def _execute(self, job: LocalJob) -> None:
        with job.lock:
            if job.stop_requested.is_set():
                return
            _set_status(job, "InProgress", "Training")
            with job.stdout_log.open("wb") as stdout, job.stderr_log.open("wb") as stderr:
                job.process = subprocess.Popen(
                    job.command,
                    cwd=job.work_dir,
                    env={
                        **job.environment,
                        "PATH": f"{self._bin}{os.pathsep}{job.environment.get('PATH', '')}",
                    },
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
        job.returncode = job.process.wait()

    def _upload(self, job: LocalJob) -> None:
        if isinstance(job.record, FakeTrainingJob):
            output = _join_uri(str(job.record.output_data_config["S3OutputPath"]), f"{job.name}/output")
            model = _tar_directory(job.local("/opt/ml/model"))
            _put_object(job.account_id, job.region, f"{output}/model.tar.gz", model)
            data_dir = job.local("/opt/ml/output/data")
            if any(data_dir.iterdir()):
                _put_object(job.account_id, job.region, f"{output}/output.tar.gz", _tar_directory(data_dir))
        for upload in job.uploads:
            if upload.local_path.is_file():
                _put_object(job.account_id, job.region, upload.uri, upload.local_path.read_bytes())
                continue
            for path in sorted(p for p in upload.local_path.rglob("*") if p.is_file()):
                relative = path.relative_to(upload.local_path).as_posix()
                _put_object(job.account_id, job.region, _join_uri(upload.uri, relative), path.read_bytes())


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the job's process group now, SIGKILL if it is still running after the grace period
    (without waiting here: the Stop* call returns at once, as SageMaker's does)."""
    _signal_group(process, signal.SIGTERM)

    def kill_if_running() -> None:
        if process.poll() is None:
            _signal_group(process, signal.SIGKILL)

    timer = threading.Timer(STOP_GRACE_S, kill_if_running)
    timer.daemon = True
    timer.start()


def _signal_group(process: subprocess.Popen[bytes], signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has ended already
        os.killpg(process.pid, signal_number)


def _program_reason(job: LocalJob) -> str:
    """What the program said about its failure: its failure/message file, else its stderr's last lines."""
    if job.reason_file.is_file():
        text = job.reason_file.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return text
    lines = job.stderr_log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    tail = "\n".join(lines[-STDERR_TAIL_LINES:])
    return tail or f"the program exited with status {job.returncode} and wrote nothing to stderr"


def _cut(text: str) -> str:
    return text.encode("utf-8")[:REASON_MAX_BYTES].decode("utf-8", errors="ignore")


def _set_status(job: LocalJob, status: str, secondary: str) -> None:
    now = utcnow()
    record = job.record
    record.last_modified_time = now
    if isinstance(record, FakeTrainingJob):
        record.training_job_status = status
        if record.secondary_status != secondary:
            for transition in record.secondary_status_transitions:
                transition.setdefault("EndTime", now)
            record.secondary_status_transitions.append({"Status": secondary, "StartTime": now})
        record.secondary_status = secondary
    else:
        record.processing_job_status = status


def _finish(job: LocalJob, status: str, reason: str | None = None, exit_message: str | None = None) -> None:
    record = job.record
    now = utcnow()
    with job.lock:
        _set_status(job, status, status)
        for transition in getattr(record, "secondary_status_transitions", []):
            transition.setdefault("EndTime", now)
        if reason is not None:
            record.failure_reason = _cut(reason)
        if isinstance(record, FakeTrainingJob):
            record.training_end_time = now
            if status == "Completed":
                record.model_artifacts = {"S3ModelArtifacts": _model_artifact_uri(record)}
        else:
            record.processing_end_time = now
            if exit_message is not None:
                record.exit_message = _cut(exit_message)
        job.ended.set()


# --- S3 through moto's backend ----------------------------------------------------------------------------


def _s3(account_id: str, region: str) -> Any:
    return s3_backends[account_id][get_partition(region)]


def _split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise JobFailedError(f"ClientError: {uri!r} is not an s3:// URI")
    return parsed.netloc, parsed.path.lstrip("/")


def _join_uri(uri: str, relative: str) -> str:
    return f"{uri.rstrip('/')}/{relative}"


def _list_objects(account_id: str, region: str, uri: str) -> list[tuple[str, bytes]]:
    """Every object under the prefix: (path relative to the prefix's folder, body), in key order."""
    bucket_name, prefix = _split_uri(uri)
    backend = _s3(account_id, region)
    try:
        bucket = backend.get_bucket(bucket_name)
        keys, _, _, _ = backend.list_objects(bucket, prefix or None, None, None, None)
    except Exception as error:  # moto's MissingBucket and kin
        raise JobFailedError(f"ClientError: cannot read {uri}: {error}") from None
    folder = prefix[: prefix.rfind("/") + 1]
    found = []
    for key in sorted(keys, key=lambda k: k.name):
        if key.name.endswith("/"):
            continue  # a console "folder" marker, no data
        relative = key.name[len(folder) :]
        if any(part in {"", ".", ".."} for part in relative.split("/")):
            raise JobFailedError(f"ClientError: s3://{bucket_name}/{key.name} has no file path under {uri}")
        found.append((relative, bytes(key.value)))
    return found


def _put_object(account_id: str, region: str, uri: str, body: bytes) -> None:
    bucket, key = _split_uri(uri)
    try:
        _s3(account_id, region).put_object(bucket, key, body)
    except Exception as error:  # moto's MissingBucket and kin
        raise JobFailedError(f"ClientError: cannot upload to {uri}: {error}") from None


def _model_artifact_uri(record: FakeTrainingJob) -> str:
    return _join_uri(
        str(record.output_data_config["S3OutputPath"]), f"{record.training_job_name}/output/model.tar.gz"
    )


def _tar_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return buffer.getvalue()


# --- building the jobs ------------------------------------------------------------------------------------


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


# --- the patches ------------------------------------------------------------------------------------------


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
    _set_status(job, "InProgress", "Starting")
    runner.start(job)
