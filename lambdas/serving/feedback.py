"""The outcome of an inference, reported later by the caller (POST /feedback), scored per variant.

A label is compared with the model's predicted label of each record (1.0 correct, 0.0 not); a
conversion is 1.0 or 0.0. The values feed `Accuracy` / `Conversion` and the endpoint's business metric
per variant, which the judge and the alarms read::

    {"inference_id": "5b0c...", "label": 1}              # or a list, one label per record
    {"inference_id": "5b0c...", "converted": true}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from lambdas.serving.ports import (
    FeedbackRejected,
    Forbidden,
    InferenceRecord,
    InferenceStore,
    JsonScalar,
    Outcome,
    OutcomeAlreadyRecorded,
)
from lambdas.serving.settings import EndpointSettings
from lambdas.shared.business_metric import BusinessMetricName

INFERENCE_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# As the router bounds string features and records (lambdas/serving/inference.py).
MAX_LABEL_LENGTH = 256
MAX_LABELS = 1000
Label = (
    Annotated[StrictStr, Field(max_length=MAX_LABEL_LENGTH)]
    | StrictInt
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | StrictBool
)
OutcomeKind = Literal["label", "conversion"]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    inference_id: str = Field(pattern=INFERENCE_ID_PATTERN, description="as returned by the prediction")
    label: Label | Annotated[list[Label], Field(min_length=1, max_length=MAX_LABELS)] | None = Field(
        default=None, description="the true label (one per record for a batch)"
    )
    converted: StrictBool | None = Field(default=None, description="whether the user converted")

    @model_validator(mode="after")
    def _exactly_one_outcome(self) -> Self:
        if (self.label is None) == (self.converted is None):
            raise ValueError("give exactly one of 'label' or 'converted'")
        return self

    @property
    def kind(self) -> OutcomeKind:
        return "conversion" if self.converted is not None else "label"


class FeedbackResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    inference_id: str
    endpoint: str
    variant: str
    outcome: OutcomeKind
    values: tuple[float, ...] = Field(description="1.0 correct / converted, 0.0 not; one per record")


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    response: FeedbackResponse
    endpoint_name: str
    business_metric: BusinessMetricName


def score(request: FeedbackRequest, record: InferenceRecord) -> Outcome:
    """The outcome's values for this inference; raises FeedbackRejected when they do not fit it."""
    if request.converted is not None:
        return Outcome(kind="conversion", values=(1.0 if request.converted else 0.0,))
    labels = request.label if isinstance(request.label, list) else [request.label]
    if record.predicted_labels is None:
        raise FeedbackRejected(
            f"inference {record.inference_id} has no predicted label to compare with; send 'converted'"
        )
    if len(labels) != record.records:
        raise FeedbackRejected(
            f"inference {record.inference_id} has {record.records} record(s), got {len(labels)} label(s)"
        )
    values = tuple(
        1.0 if same_label(truth, predicted) else 0.0
        for truth, predicted in zip(labels, record.predicted_labels, strict=True)
    )
    return Outcome(kind="label", values=values)


def same_label(truth: JsonScalar, predicted: JsonScalar) -> bool:
    """Numbers compare by value (1 == 1.0); anything else must be equal and of the same kind."""
    numbers = (int, float)
    if isinstance(truth, numbers) and isinstance(predicted, numbers):
        if isinstance(truth, bool) or isinstance(predicted, bool):
            return truth is predicted
        return float(truth) == float(predicted)
    return type(truth) is type(predicted) and truth == predicted


class FeedbackRecorder:
    """Records an outcome once per inference and says what to publish for it."""

    def __init__(
        self,
        *,
        endpoints: Mapping[str, EndpointSettings],
        store: InferenceStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoints = endpoints
        self._store = store
        self._clock = clock

    def record(self, request: FeedbackRequest, *, caller: str) -> FeedbackResult:
        """Record the outcome `caller` (a principal) reports; it must be the one the inference served."""
        now = int(self._clock())
        record = self._store.load(request.inference_id, now=now)
        if not record.caller:
            raise Forbidden(
                f"inference {record.inference_id} was stored before feedback was bound to its caller; "
                "its outcome cannot be reported"
            )
        if record.caller != caller:
            # Before the replay check: a stranger learns nothing about the inference's outcome.
            raise Forbidden(
                f"inference {record.inference_id} was served to another caller; only that caller can report "
                "its outcome"
            )
        if record.outcome_recorded:
            raise OutcomeAlreadyRecorded(
                f"an outcome for inference {record.inference_id} was already recorded"
            )
        settings = self._endpoints.get(record.endpoint)
        if settings is None:
            # Stored by a deployment that served an endpoint this one no longer has.
            raise FeedbackRejected(
                f"inference {record.inference_id} belongs to unknown endpoint {record.endpoint!r}"
            )
        outcome = score(request, record)
        self._store.record_outcome(request.inference_id, outcome, now=now)
        response = FeedbackResponse(
            inference_id=record.inference_id,
            endpoint=record.endpoint,
            variant=record.variant,
            outcome=request.kind,
            values=outcome.values,
        )
        return FeedbackResult(
            response=response, endpoint_name=record.endpoint_name, business_metric=settings.business_metric
        )
