"""The model package a passed retraining registers: what it serves and where it came from.

CustomerMetadataProperties carries the run's provenance (data and code versions, the manifest's URL, the
execution) and its numbers (``hp.<name>``, ``metric.<name>``, rows). SageMaker allows at most 50 entries,
keys of at most 128 characters and values of at most 256, of letters, digits, spaces and ``_.:/=+-@``;
the rollout adds its own ``rollout.*`` summary later, so this leaves room for it. A report that cannot
be stored whole is refused with the entry named: nothing is silently cut from a model's provenance.

Pure domain code: the request is a plain dict in the shape of SageMaker's CreateModelPackage.
"""

from __future__ import annotations

import re
from typing import Any

from lambdas.retraining.evaluation import EvaluationReport
from lambdas.retraining.settings import FamilySettings
from lambdas.retraining.state import RetrainingState

__all__ = [
    "METADATA_MAX_ENTRIES",
    "InvalidMetadata",
    "package_metadata",
    "registration_request",
]

METADATA_MAX_ENTRIES = 50
METADATA_KEY_MAX = 128
METADATA_VALUE_MAX = 256
# rollout.id, entries, outcome, reason, gates, verdicts, traffic (lambdas.rollout.ledger.summarize), + 1.
ROLLOUT_RESERVED_ENTRIES = 8
RETRAINING_MAX_ENTRIES = METADATA_MAX_ENTRIES - ROLLOUT_RESERVED_ENTRIES
_ALLOWED = re.compile(r"^[\w .:/=+\-@]*$")
CONTENT_TYPE = "application/json"


class InvalidMetadata(ValueError):
    """The report's provenance does not fit the package's metadata limits."""


def package_metadata(
    state: RetrainingState, report: EvaluationReport, *, data_manifest_url: str
) -> dict[str, str]:
    """The package's CustomerMetadataProperties; InvalidMetadata names the first entry out of bounds."""
    entries: dict[str, str] = {
        "data_version": report.data_version,
        "code_version": report.code_version,
        "model_version": report.model_version,
        "recipe": report.recipe,
        "training_rows": str(report.training_rows),
        "data_objects": str(report.data_objects),
        "data_manifest": data_manifest_url,
        "retraining_execution": state.execution_id,
        "retraining_trigger": state.trigger.kind,
    }
    entries |= {f"hp.{name}": str(value) for name, value in sorted(report.hyperparameters.items())}
    entries |= {f"metric.{name}": repr(float(value)) for name, value in sorted(report.metrics.items())}
    if len(entries) > RETRAINING_MAX_ENTRIES:
        raise InvalidMetadata(
            f"{len(entries)} metadata entries exceed the {RETRAINING_MAX_ENTRIES} a retrained package may "
            f"have (SageMaker's {METADATA_MAX_ENTRIES} less {ROLLOUT_RESERVED_ENTRIES} for the rollout's "
            "summary): too many hyperparameters"
        )
    for key, value in entries.items():
        _check(key, value)
    return entries


def _check(key: str, value: str) -> None:
    if not 1 <= len(key) <= METADATA_KEY_MAX:
        raise InvalidMetadata(f"metadata key {key[:40]!r}... is {len(key)} characters (1-{METADATA_KEY_MAX})")
    if not 1 <= len(value) <= METADATA_VALUE_MAX:
        raise InvalidMetadata(
            f"metadata {key}: value is {len(value)} characters, SageMaker allows 1-{METADATA_VALUE_MAX}"
        )
    for what, text in (("key", key), ("value", value)):
        if not _ALLOWED.match(text):
            raise InvalidMetadata(
                f"metadata {key}: the {what} {text[:60]!r} has characters SageMaker refuses "
                "(allowed: letters, digits, spaces and _.:/=+-@)"
            )


def registration_request(
    state: RetrainingState,
    report: EvaluationReport,
    family: FamilySettings,
    *,
    model_data_url: str,
    evaluation_url: str,
    data_manifest_url: str,
    approve: bool,
) -> dict[str, Any]:
    """CreateModelPackage for the family's group: the endpoint's serving image with the new artifact."""
    return {
        "ModelPackageGroupName": family.model_package_group,
        "ModelPackageDescription": (
            f"{report.model_version}: retrained on data {report.data_version[:12]} by {state.trigger.kind}"
        ),
        # The same run registers once, however often the task is retried.
        "ClientToken": f"retraining-{state.run_id}",
        "InferenceSpecification": {
            "Containers": [{"Image": family.inference_image, "ModelDataUrl": model_data_url}],
            "SupportedContentTypes": [CONTENT_TYPE],
            "SupportedResponseMIMETypes": [CONTENT_TYPE],
        },
        "ModelApprovalStatus": "Approved" if approve else "PendingManualApproval",
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": CONTENT_TYPE, "S3Uri": evaluation_url}}
        },
        "CustomerMetadataProperties": package_metadata(state, report, data_manifest_url=data_manifest_url),
    }
