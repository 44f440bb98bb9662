"""A step's failure told SageMaker's way: the reason in the output directory's failure file, and stderr."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

DEFAULT_OUTPUT_DIR = "/opt/ml/output"
FAILURE_FILE = "failure"
# SageMaker truncates a failure reason; the first line names the problem.
FAILURE_MAX_BYTES = 1024


def write_failure(
    output_dir: Path, reason: str, *, file_name: str = FAILURE_FILE, force: bool = False
) -> None:
    """The reason, cut to SageMaker's limit, in ``<output_dir>/<file_name>`` where SageMaker reads it.

    Written only inside SageMaker's layout (the directory exists, or ``force``): a run from the command
    line does not create ``/opt/ml``.
    """
    if not (force or output_dir.is_dir()):
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    encoded = reason.encode("utf-8")[:FAILURE_MAX_BYTES]
    (output_dir / file_name).write_bytes(encoded.decode("utf-8", errors="ignore").encode("utf-8"))


def fail(reason: str, *, file_name: str = FAILURE_FILE) -> NoReturn:
    """Report a failure SageMaker's way (the failure file and stderr) and exit with status 1."""
    output_dir = os.environ.get("SM_OUTPUT_DIR")
    write_failure(Path(output_dir or DEFAULT_OUTPUT_DIR), reason, file_name=file_name, force=bool(output_dir))
    print(reason, file=sys.stderr)
    raise SystemExit(1)
