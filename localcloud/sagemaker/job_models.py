"""A local SageMaker job: its layout on disk, its S3 inputs and outputs, its status and errors."""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from moto.sagemaker.models import FakeTrainingJob

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


ENDED = ("Completed", "Failed", "Stopped")


class MotoChangedError(RuntimeError):
    """moto's SageMaker jobs are no longer what this module wraps."""


class LocalJobError(RuntimeError):
    """A job cannot be found or awaited as asked; the message says why."""


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
