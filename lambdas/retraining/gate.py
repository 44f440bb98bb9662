"""The gate between evaluation and registration: a retrained model is registered only if it is good enough.

Two checks over the evaluation report, both must pass: each held-out metric at or above the configured
minimum (``rollout.gates.minimum_metrics``, the same thresholds the rollout's metric gate applies, via
``lambdas.gates.metric_gate``), and the golden self-check the evaluation step ran. The comparison
with the champion is the rollout's own pre-traffic gate, against whatever serves when it starts.

Pure domain code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from lambdas.gates import GateSettings, MetricCheck, metric_gate
from lambdas.retraining.evaluation import EvaluationReport

__all__ = ["GateFailed", "GateVerdict", "judge_report"]


class GateFailed(Exception):
    """The retrained model missed a metric minimum or its golden check; nothing is registered."""


class GateVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    passed: bool
    reason: str
    checks: tuple[MetricCheck, ...]


def judge_report(report: EvaluationReport, settings: GateSettings) -> GateVerdict:
    """Every configured minimum and the golden check; the reason names each failure with its numbers."""
    registered: dict[str, float] = {str(name): value for name, value in report.metrics.items()}
    metrics = metric_gate(registered, None, settings)
    failures = [check.reason for check in metrics.checks if not check.passed]
    if not report.golden_check.passed:
        failures.append(f"golden check failed: {report.golden_check.detail}")
    if failures:
        reason = f"model {report.model_version} did not pass the retraining gate: " + "; ".join(failures)
        return GateVerdict(passed=False, reason=reason, checks=metrics.checks)
    limits = ", ".join(f"{c.metric} {c.candidate:.4g} >= {c.minimum:.4g}" for c in metrics.checks)
    limits = limits or "no metric minimums configured"
    reason = f"model {report.model_version} passed: {limits}; golden check passed"
    return GateVerdict(passed=True, reason=reason, checks=metrics.checks)
