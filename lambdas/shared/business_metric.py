"""Where an endpoint's business metric lives in CloudWatch: feedback publishes it, the judge reads it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BusinessMetricName"]


class BusinessMetricName(BaseModel):
    # Extra keys are ignored so the CDK side may pass the whole config model (statistic, threshold...).
    model_config = ConfigDict(extra="ignore", frozen=True)

    namespace: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)
