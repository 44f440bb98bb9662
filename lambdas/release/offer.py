"""The release chain's offer: a package one environment promoted, offered to the next with its evidence.

The promoting environment puts an ``ReleaseOffer`` on EventBridge (source ``mlrollout.release``); the next
environment's release workflow registers the package in its own registry from it. The offer carries the
package's registry metadata, among it the rollout's ledger summary (``lambdas.rollout.ledger.summarize``:
rollout id, outcome, gates, verdicts, traffic), which the next environment keeps under the offering
environment's name. Pure domain code: pydantic and the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lambdas.rollout.ledger import METADATA_KEY_PREFIX, METADATA_VALUE_MAX

__all__ = [
    "DETAIL_TYPE",
    "EVENT_SOURCE",
    "METADATA_ENTRIES_MAX",
    "OFFERED_OUTCOME",
    "ReleaseOffer",
    "evidence_metadata",
    "offer_entry",
]

EVENT_SOURCE = "mlrollout.release"
DETAIL_TYPE = "Model Package Promoted"
# CreateModelPackage's CustomerMetadataProperties: at most 50 entries, keys of 1-128 characters.
METADATA_ENTRIES_MAX = 50
METADATA_KEY_MAX = 128
OFFERED_OUTCOME = "promoted"
# Where the next environment says which package and environment its package came from.
SOURCE_ENVIRONMENT_KEY = "release.source-environment"
SOURCE_PACKAGE_KEY = "release.source-package"
_PACKAGE_ARN = r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[A-Za-z0-9-]{1,63}/\d+$"
_METADATA_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$")

EnvironmentName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$", max_length=16)]


class ReleaseOffer(BaseModel):
    """The event's detail: which package, promoted where and how, and how to build its model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_environment: EnvironmentName
    target_environment: EnvironmentName
    endpoint: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=24, description="its config name")
    model_package_arn: str = Field(pattern=_PACKAGE_ARN, description="the promoted package")
    image: str = Field(min_length=1, max_length=255, description="its inference image")
    model_data_url: str = Field(pattern=r"^s3://[a-z0-9.-]{3,63}/.+$", description="its model artifact")
    rollout_id: str = Field(min_length=1, max_length=256, description="the promoting rollout (its ledger)")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="the package's registry metadata, with the rollout's summary"
    )

    @property
    def outcome(self) -> str | None:
        return self.metadata.get(f"{METADATA_KEY_PREFIX}.outcome")

    def refusal(self) -> str | None:
        """Why this offer must not be registered, or None: only a promoted package moves on."""
        if self.source_environment == self.target_environment:
            return f"the offer comes from {self.target_environment!r} itself"
        if self.outcome != OFFERED_OUTCOME:
            return (
                f"package {self.model_package_arn} was not promoted in {self.source_environment!r} "
                f"(its rollout's outcome: {self.outcome or 'none recorded'}); only promoted packages move on"
            )
        return None


def evidence_metadata(offer: ReleaseOffer) -> dict[str, str]:
    """The registry metadata of the package the next environment registers: the offered package's, its
    rollout's summary under the offering environment's name (``staging.rollout.outcome``: the next
    environment's own rollout writes ``rollout.*``), and where it came from. Entries that would break
    SageMaker's limits are left out; the source package keeps them."""
    source = offer.source_environment
    carried: dict[str, str] = {}
    for key, value in offer.metadata.items():
        renamed = f"{source}.{key}" if key.startswith(f"{METADATA_KEY_PREFIX}.") else key
        if _fits(renamed, value):
            carried[renamed] = value
    own = {SOURCE_ENVIRONMENT_KEY: source, SOURCE_PACKAGE_KEY: offer.model_package_arn}
    room = METADATA_ENTRIES_MAX - len(own)
    # The rollout's summary first: it is the evidence the next environment decides on.
    ordered = sorted(carried.items(), key=lambda item: (not item[0].startswith(f"{source}."), item[0]))
    return dict(ordered[:room]) | own


def _fits(key: str, value: str) -> bool:
    return (
        0 < len(key) <= METADATA_KEY_MAX
        and len(value) <= METADATA_VALUE_MAX
        and bool(_METADATA_TEXT.match(key))
        and bool(_METADATA_TEXT.match(value))
    )


def offer_entry(offer: ReleaseOffer, *, event_bus: str = "default") -> dict[str, Any]:
    """The PutEvents entry that carries the offer."""
    return {
        "Source": EVENT_SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": offer.model_dump_json(),
        "EventBusName": event_bus,
        "Resources": [offer.model_package_arn],
    }


def package_container(description: Mapping[str, Any]) -> tuple[str, str]:
    """The image and model artifact of a described package's (first) inference container."""
    containers = description.get("InferenceSpecification", {}).get("Containers") or []
    if not containers or "ModelDataUrl" not in containers[0]:
        arn = description.get("ModelPackageArn", "the package")
        raise ValueError(f"{arn} has no inference container with a model artifact to release")
    return str(containers[0]["Image"]), str(containers[0]["ModelDataUrl"])
