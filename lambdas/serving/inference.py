"""A prediction request end to end: read flags and weights, choose a variant, call the model, store it.

Request and response are the Inference API's JSON (POST /endpoints/{endpoint}/invocations)::

    {"features": {"tenure": 12, "plan": "pro"}, "user_id": "u-42", "segment": "beta"}

    {"inference_id": "5b0c...", "endpoint": "churn", "variant": "challenger",
     "prediction": {"predictions": [1]},
     "routing": {"reason": "sticky_hash", "target_variant": "challenger", "detail": "..."}}
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from lambdas.flags import EndpointFlags, EndpointVariants, Segment, UserId
from lambdas.serving.ports import (
    FlagSource,
    FlagsUnavailable,
    InferenceRecord,
    InferenceStore,
    JsonScalar,
    ModelInvoker,
    StoreUnavailable,
    TrafficSplit,
    UnknownEndpoint,
    WeightSource,
    WeightsUnavailable,
)
from lambdas.serving.routing import RouteDecision, RouteReason, Unavailable, choose_variant
from lambdas.serving.settings import EndpointSettings

MAX_RECORDS = 1000
SECONDS_PER_DAY = 86_400

# Bounds on what a caller can make the router hold, forward and store; errors name them, never the value.
MAX_FEATURE_STRING_LENGTH = 256
MAX_FEATURE_NAME_LENGTH = 128


def _short_feature_names(record: dict[str, Any]) -> dict[str, Any]:
    # Checked here rather than as a key constraint: pydantic would put the offending key in the error.
    if any(len(name) > MAX_FEATURE_NAME_LENGTH for name in record):
        raise ValueError(f"feature names are at most {MAX_FEATURE_NAME_LENGTH} characters")
    return record


FeatureValue = (
    Annotated[StrictStr, Field(max_length=MAX_FEATURE_STRING_LENGTH)]
    | StrictInt
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | StrictBool
    | None
)
Record = (
    Annotated[dict[str, FeatureValue], Field(min_length=1), AfterValidator(_short_feature_names)]
    | Annotated[list[FeatureValue], Field(min_length=1)]
)


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PredictionRequest(ApiModel):
    features: Record | Annotated[list[Record], Field(min_length=1, max_length=MAX_RECORDS)] = Field(
        description="one record (an object of named features or a row of values) or a list of records"
    )
    user_id: UserId | None = Field(default=None, description="makes the variant sticky for this user")
    segment: Segment | None = Field(default=None, description="matched against the segment pin")

    def instances(self) -> list[Any]:
        """The records as the inference container's `{"instances": [...]}` expects them."""
        if isinstance(self.features, dict):
            return [self.features]
        if all(isinstance(item, dict | list) for item in self.features):
            return list(self.features)
        return [self.features]


class Routing(ApiModel):
    reason: RouteReason
    target_variant: str | None = Field(description="the TargetVariant sent; null when SageMaker split")
    detail: str


class PredictionResponse(ApiModel):
    inference_id: str
    endpoint: str
    variant: str = Field(description="the production variant that answered")
    prediction: Any = Field(description="the inference container's JSON answer, unchanged")
    routing: Routing
    recorded: bool = Field(
        description="whether the inference was stored; feedback is only accepted for a recorded one"
    )


@dataclass(frozen=True, slots=True)
class PredictionResult:
    response: PredictionResponse
    endpoint_name: str
    store_failure: str | None = None
    """Why the inference could not be recorded (it was dropped); None when it was."""


class Predictor:
    """Serves predictions for the configured endpoints through the given ports."""

    def __init__(
        self,
        *,
        endpoints: Mapping[str, EndpointSettings],
        flags: FlagSource,
        weights: WeightSource,
        invoker: ModelInvoker,
        store: InferenceStore,
        ttl_days: int,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        # Kept as given: a deployed router's endpoints are a catalog read from SSM as it changes.
        self._endpoints = endpoints
        self._flags = flags
        self._weights = weights
        self._invoker = invoker
        self._store = store
        self._ttl_seconds = ttl_days * SECONDS_PER_DAY
        self._clock = clock
        self._new_id = new_id

    def predict(self, endpoint: str, request: PredictionRequest, *, caller: str) -> PredictionResult:
        """Route, invoke and record the inference for `caller` (a principal: it alone may send feedback)."""
        settings = self._endpoint(endpoint)
        decision = self.route(endpoint, request)
        inference_id = self._new_id()
        instances = request.instances()
        invocation = self._invoker.invoke(
            endpoint_name=settings.endpoint_name,
            instances=instances,
            target_variant=decision.target_variant,
            inference_id=inference_id,
        )
        now = int(self._clock())
        record = InferenceRecord(
            inference_id=inference_id,
            endpoint=endpoint,
            endpoint_name=settings.endpoint_name,
            variant=invocation.variant,
            records=len(instances),
            predicted_labels=predicted_labels(invocation.body, len(instances)),
            created_at=now,
            expires_at=now + self._ttl_seconds,
            caller=caller,
        )
        store_failure = self._save(record)
        response = PredictionResponse(
            inference_id=inference_id,
            endpoint=endpoint,
            variant=invocation.variant,
            prediction=invocation.body,
            routing=Routing(
                reason=decision.reason, target_variant=decision.target_variant, detail=decision.detail
            ),
            recorded=store_failure is None,
        )
        return PredictionResult(
            response=response, endpoint_name=settings.endpoint_name, store_failure=store_failure
        )

    def _save(self, record: InferenceRecord) -> str | None:
        """Store the record; on a store fault (after the store client's one retry) drop it and say why.

        The prediction is computed and answered either way: failing it would make clients retry a
        model call that succeeded, doubling the load while the store is down.
        """
        try:
            self._store.save(record)
        except StoreUnavailable as error:
            return str(error)
        return None

    def route(self, endpoint: str, request: PredictionRequest) -> RouteDecision:
        """The variant choice alone (no model call): what the benchmark times."""
        settings = self._endpoint(endpoint)
        return choose_variant(
            flags=self._endpoint_flags(endpoint),
            variants=EndpointVariants(
                endpoint=endpoint, champion=settings.champion, challenger=settings.challenger
            ),
            traffic=self._current_traffic(settings.endpoint_name),
            user_id=request.user_id,
            segment=request.segment,
        )

    def _endpoint(self, endpoint: str) -> EndpointSettings:
        settings = self._endpoints.get(endpoint)
        if settings is None:
            raise UnknownEndpoint(f"unknown endpoint {endpoint!r} (known: {sorted(self._endpoints)})")
        return settings

    def _endpoint_flags(self, endpoint: str) -> EndpointFlags | Unavailable:
        try:
            return self._flags.flags().for_endpoint(endpoint)
        except (FlagsUnavailable, KeyError) as error:
            return Unavailable(str(error))

    def _current_traffic(self, endpoint_name: str) -> TrafficSplit | Unavailable:
        try:
            return self._weights.traffic(endpoint_name)
        except WeightsUnavailable as error:
            return Unavailable(str(error))


def predicted_labels(body: Any, records: int) -> tuple[JsonScalar, ...] | None:
    """The predicted label of each record, when the answer carries one per record.

    Accepted answers: `{"predictions": [...]}` or a bare list, whose items are labels (scalars) or
    objects with a `label`. Anything else (e.g. probabilities only as objects) has no labels to score.
    """
    items = body.get("predictions") if isinstance(body, dict) else body
    if not isinstance(items, list):
        items = [items]
    labels = [_label(item) for item in items]
    if len(labels) != records or any(label is None for label in labels):
        return None
    return tuple(labels)


def _label(item: Any) -> JsonScalar:
    if isinstance(item, dict):
        item = item.get("label")
    return item if isinstance(item, str | int | float | bool) else None
