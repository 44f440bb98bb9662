"""CloudWatch embedded metric format (EMF): the metrics a Lambda function logs, into moto's CloudWatch."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends


class EmfError(ValueError):
    """A log line that claims to be EMF (has ``_aws``) but breaks the specification."""


@dataclass(frozen=True, slots=True)
class EmfDatum:
    namespace: str
    name: str
    value: float
    unit: str | None
    dimensions: tuple[tuple[str, str], ...]
    timestamp: datetime
    """Naive UTC, as moto stores datapoints."""


def metrics_in_log(log: str) -> list[EmfDatum]:
    """Every datum of every EMF document among the log's lines; other lines are ignored."""
    return [datum for line in log.splitlines() for datum in _document_metrics(line)]


def publish_log_metrics(log: str, *, account_id: str, region: str) -> int:
    """Store the log's EMF metrics in moto's CloudWatch; how many datapoints were stored."""
    data = metrics_in_log(log)
    backend = cloudwatch_backends[account_id][region]
    for datum in data:
        backend.put_metric_data(
            datum.namespace,
            [
                {
                    "MetricName": datum.name,
                    "Value": datum.value,
                    "Unit": datum.unit,
                    "Timestamp": datum.timestamp,
                    "Dimensions": [{"Name": name, "Value": value} for name, value in datum.dimensions],
                }
            ],
        )
    return len(data)


def _document_metrics(line: str) -> Iterator[EmfDatum]:
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return  # a log line that merely mentions _aws
    if not isinstance(document, dict) or "_aws" not in document:
        return
    metadata = document["_aws"]
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("Timestamp"), int | float):
        raise EmfError("EMF document without a numeric _aws.Timestamp (epoch milliseconds)")
    timestamp = datetime.fromtimestamp(metadata["Timestamp"] / 1000, UTC).replace(tzinfo=None)
    for directive in metadata.get("CloudWatchMetrics") or []:
        yield from _directive_metrics(document, directive, timestamp)


def _directive_metrics(
    document: Mapping[str, Any], directive: Any, timestamp: datetime
) -> Iterator[EmfDatum]:
    namespace = directive.get("Namespace") if isinstance(directive, Mapping) else None
    if not isinstance(namespace, str) or not namespace:
        raise EmfError(f"EMF directive without a Namespace: {directive!r}")
    dimension_sets = directive.get("Dimensions") or [[]]
    for metric in directive.get("Metrics") or []:
        name = metric.get("Name")
        if name not in document:
            raise EmfError(f"EMF metric {name!r} of {namespace} has no value in the document")
        raw = document[name]
        values = raw if isinstance(raw, list) else [raw]
        for dimension_names in dimension_sets:
            missing = [d for d in dimension_names if d not in document]
            if missing:
                raise EmfError(f"EMF metric {name!r}: dimension(s) {missing} have no value in the document")
            dimensions = tuple((d, str(document[d])) for d in dimension_names)
            for value in values:
                yield EmfDatum(namespace, str(name), float(value), metric.get("Unit"), dimensions, timestamp)
