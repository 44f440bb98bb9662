"""SageMaker runtime's errors, as InvokeEndpoint answers them."""

from __future__ import annotations

from moto.core.exceptions import ServiceException


class SageMakerValidationError(ServiceException):
    """SageMaker Runtime's `ValidationError` (HTTP 400), serialized by moto from the API model."""

    code = "ValidationError"


class SageMakerModelError(ServiceException):
    """SageMaker Runtime's `ModelError` (HTTP 424): the container answered 4xx/5xx, or did not answer."""

    code = "ModelError"

    def __init__(
        self, message: str, *, original_status_code: int, original_message: str, log_stream_arn: str
    ):
        super().__init__(message)
        # Read by moto's serializer under the ModelError shape's member names.
        self.original_status_code = original_status_code
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn
