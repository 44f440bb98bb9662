"""The jobs while open: each job's program run as a local process, its status and outputs kept in moto."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeTrainingJob

from localcloud.sagemaker.job_models import (
    ENDED,
    PYTHON_NAMES,
    REASON_MAX_BYTES,
    STDERR_TAIL_LINES,
    STOP_GRACE_S,
    JobFailedError,
    JobKind,
    LocalJob,
    LocalJobError,
)
from localcloud.sagemaker.job_storage import (
    join_uri,
    list_objects_under,
    model_artifact_uri,
    put_object_at,
    tar_directory,
)


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
            set_status(job, "Stopping", "Stopping")
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
            set_status(job, "InProgress", "Uploading")
            self._upload(job)
            _finish(job, "Completed")
        except JobFailedError as failure:
            status = "Stopped" if job.stop_requested.is_set() else "Failed"
            _finish(job, status, failure.reason, failure.exit_message)
        except Exception as error:  # a bug here must show on the job, not vanish with the thread
            _finish(job, "Failed", f"InternalServerError: the local job runner failed: {error!r}")

    def _download(self, job: LocalJob) -> None:
        set_status(job, "InProgress", "Downloading")
        for download in job.downloads:
            objects = list_objects_under(job.account_id, job.region, download.uri)
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
            set_status(job, "InProgress", "Training")
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
            output = join_uri(str(job.record.output_data_config["S3OutputPath"]), f"{job.name}/output")
            model = tar_directory(job.local("/opt/ml/model"))
            put_object_at(job.account_id, job.region, f"{output}/model.tar.gz", model)
            data_dir = job.local("/opt/ml/output/data")
            if any(data_dir.iterdir()):
                put_object_at(job.account_id, job.region, f"{output}/output.tar.gz", tar_directory(data_dir))
        for upload in job.uploads:
            if upload.local_path.is_file():
                put_object_at(job.account_id, job.region, upload.uri, upload.local_path.read_bytes())
                continue
            for path in sorted(p for p in upload.local_path.rglob("*") if p.is_file()):
                relative = path.relative_to(upload.local_path).as_posix()
                put_object_at(job.account_id, job.region, join_uri(upload.uri, relative), path.read_bytes())


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


def set_status(job: LocalJob, status: str, secondary: str) -> None:
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
        set_status(job, status, status)
        for transition in getattr(record, "secondary_status_transitions", []):
            transition.setdefault("EndTime", now)
        if reason is not None:
            record.failure_reason = _cut(reason)
        if isinstance(record, FakeTrainingJob):
            record.training_end_time = now
            if status == "Completed":
                record.model_artifacts = {"S3ModelArtifacts": model_artifact_uri(record)}
        else:
            record.processing_end_time = now
            if exit_message is not None:
                record.exit_message = _cut(exit_message)
        job.ended.set()
