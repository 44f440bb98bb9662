"""All three gates together, and the overall verdict."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pydantic import model_validator

from lambdas.gates.drift import CapturedFeatures, DriftGateResult, TrainingBaseline, drift_gate
from lambdas.gates.golden import CandidateAnswer, GoldenGateResult, GoldenSet, golden_gate
from lambdas.gates.metrics import MetricGateResult, metric_gate
from lambdas.gates.settings import FrozenModel, GateName, GateSettings, GateStatus

__all__ = ["GatesReport", "evaluate_gates"]

# -- all gates ---------------------------------------------------------------------------------------


class GatesReport(FrozenModel):
    """Every gate's result and the overall verdict: promotion may go on only if nothing blocks it."""

    passed: bool
    blocking_gates: tuple[GateName, ...]
    reason: str
    golden_inputs: GoldenGateResult
    metric_thresholds: MetricGateResult
    input_drift: DriftGateResult

    @model_validator(mode="after")
    def _verdict_follows_results(self) -> GatesReport:
        blocking = tuple(result.gate for result in self.results() if result.blocks_promotion)
        if self.blocking_gates != blocking or self.passed != (not blocking):
            raise ValueError("passed and blocking_gates must follow from the gate results")
        return self

    def results(self) -> Iterator[GoldenGateResult | MetricGateResult | DriftGateResult]:
        yield self.golden_inputs
        yield self.metric_thresholds
        yield self.input_drift


def evaluate_gates(
    *,
    settings: GateSettings,
    golden: GoldenSet,
    challenger_outputs: Mapping[str, CandidateAnswer],
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    baseline: TrainingBaseline,
    captured: CapturedFeatures,
) -> GatesReport:
    """Run all three gates (each runs whatever the others found) and give the overall verdict."""
    golden_result = golden_gate(golden, challenger_outputs, settings)
    metric_result = metric_gate(candidate_metrics, champion_metrics, settings)
    drift_result = drift_gate(baseline, captured, settings)
    results = (golden_result, metric_result, drift_result)
    blocking = tuple(result.gate for result in results if result.blocks_promotion)
    if blocking:
        reason = "blocked by " + "; ".join(
            f"{r.gate.value}: {r.reason}" for r in results if r.blocks_promotion
        )
    else:
        reason = "all gates passed" + "".join(
            f"; {r.gate.value} not evaluated: {r.reason}"
            for r in results
            if r.status is not GateStatus.PASSED
        )
    return GatesReport(
        passed=not blocking,
        blocking_gates=blocking,
        reason=reason,
        golden_inputs=golden_result,
        metric_thresholds=metric_result,
        input_drift=drift_result,
    )
