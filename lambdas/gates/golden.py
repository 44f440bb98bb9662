"""The golden-inputs gate: fixed inputs stored with the model package, and the outputs they must give."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, FiniteFloat, StrictInt, StrictStr, field_validator

from lambdas.gates.settings import FrozenModel, GateName, GateResult, GateSettings, GateStatus

__all__ = [
    "GoldenCase",
    "GoldenCaseResult",
    "GoldenGateResult",
    "GoldenSet",
    "Prediction",
    "Unanswered",
    "golden_gate",
]

# -- golden inputs -----------------------------------------------------------------------------------

Label = StrictInt | StrictStr
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
InputRecord = (
    Annotated[dict[str, FiniteFloat], Field(min_length=1)] | Annotated[list[FiniteFloat], Field(min_length=1)]
)


class GoldenCase(FrozenModel):
    """One fixed input and the output any version of this model package must give for it."""

    case_id: str = Field(min_length=1, max_length=128, description="Names the case in every report.")
    record: InputRecord = Field(
        description="The input record as the inference API takes it: an object keyed by feature name "
        "or an array in schema order."
    )
    expected_label: Label = Field(description="The predicted class, compared exactly (1 is not '1').")
    expected_probabilities: Annotated[tuple[Probability, ...], Field(min_length=1)] | None = Field(
        default=None,
        description="Class probabilities in the model's class order; None checks the label only.",
    )


class GoldenSet(FrozenModel):
    """The golden cases stored with a model package (``golden.json``)."""

    cases: tuple[GoldenCase, ...] = ()

    @field_validator("cases")
    @classmethod
    def _case_ids_are_unique(cls, cases: tuple[GoldenCase, ...]) -> tuple[GoldenCase, ...]:
        ids = [case.case_id for case in cases]
        duplicates = sorted({case_id for case_id in ids if ids.count(case_id) > 1})
        if duplicates:
            raise ValueError(f"golden case ids must be unique, repeated: {duplicates}")
        return cases


class Prediction(FrozenModel):
    """What the challenger returned for one golden case."""

    label: Label
    probabilities: tuple[FiniteFloat, ...] | None = None


class Unanswered(FrozenModel):
    """The challenger gave no prediction for one golden case: it refused the input or failed."""

    error: str = Field(min_length=1, description="What the endpoint answered instead of a prediction.")


CandidateAnswer = Prediction | Unanswered


class GoldenCaseResult(FrozenModel):
    case_id: str
    passed: bool
    expected_label: Label
    actual_label: Label | None = Field(description="None when the challenger gave no prediction.")
    expected_probabilities: tuple[float, ...] | None = None
    actual_probabilities: tuple[float, ...] | None = None
    max_probability_error: float | None = Field(
        description="Largest absolute probability difference; None when probabilities were not compared."
    )
    reason: str


class GoldenGateResult(GateResult):
    gate: Literal[GateName.GOLDEN_INPUTS] = GateName.GOLDEN_INPUTS
    tolerance: float
    cases: tuple[GoldenCaseResult, ...] = Field(description="Every case, ordered by case_id.")
    failed_cases: tuple[str, ...] = Field(description="Ids of the cases that failed, ordered.")


def golden_gate(
    golden: GoldenSet, outputs: Mapping[str, CandidateAnswer], settings: GateSettings
) -> GoldenGateResult:
    """Check the challenger's outputs (keyed by case_id) against the golden cases.

    Raises ValueError when the outputs do not cover exactly the golden cases: that is a fault of the
    caller, not of the model.
    """
    _check_outputs_match_cases(golden, outputs)
    tolerance = settings.golden_tolerance
    if not golden.cases:
        blocks = settings.require_golden_cases
        note = "golden cases are required" if blocks else "not required, so this does not block"
        return GoldenGateResult(
            status=GateStatus.INSUFFICIENT_DATA,
            blocks_promotion=blocks,
            reason=f"the model package has no golden cases ({note})",
            tolerance=tolerance,
            cases=(),
            failed_cases=(),
        )
    ordered = sorted(golden.cases, key=lambda case: case.case_id)
    results = tuple(_check_golden_case(case, outputs[case.case_id], tolerance) for case in ordered)
    failed = tuple(result.case_id for result in results if not result.passed)
    if failed:
        details = "; ".join(f"{r.case_id}: {r.reason}" for r in results if not r.passed)
        reason = f"{len(failed)} of {len(results)} golden cases failed: {details}"
    else:
        reason = f"all {len(results)} golden cases reproduced within tolerance {tolerance:g}"
    return GoldenGateResult(
        status=GateStatus.FAILED if failed else GateStatus.PASSED,
        blocks_promotion=bool(failed),
        reason=reason,
        tolerance=tolerance,
        cases=results,
        failed_cases=failed,
    )


def _check_outputs_match_cases(golden: GoldenSet, outputs: Mapping[str, CandidateAnswer]) -> None:
    expected = {case.case_id for case in golden.cases}
    missing = sorted(expected - set(outputs))
    unknown = sorted(set(outputs) - expected)
    if missing or unknown:
        raise ValueError(
            f"challenger outputs must cover exactly the golden cases: missing {missing}, unknown {unknown}"
        )


def _check_golden_case(case: GoldenCase, output: CandidateAnswer, tolerance: float) -> GoldenCaseResult:
    expected = case.expected_probabilities
    if isinstance(output, Unanswered):
        return GoldenCaseResult(
            case_id=case.case_id,
            passed=False,
            expected_label=case.expected_label,
            actual_label=None,
            expected_probabilities=expected,
            max_probability_error=None,
            reason=f"no prediction: {output.error}",
        )
    problems: list[str] = []
    if output.label != case.expected_label:
        problems.append(f"label {output.label!r}, expected {case.expected_label!r}")
    error: float | None = None
    actual = output.probabilities
    if expected is not None:
        if actual is None:
            problems.append("no probabilities returned")
        elif len(actual) != len(expected):
            problems.append(f"{len(actual)} probabilities returned, expected {len(expected)}")
        else:
            error = max(abs(a - e) for a, e in zip(actual, expected, strict=True))
            if error > tolerance:
                problems.append(
                    f"probabilities {_rounded(actual)}, expected {_rounded(expected)}: they differ by up "
                    f"to {error:.3g} > tolerance {tolerance:g}"
                )
    return GoldenCaseResult(
        case_id=case.case_id,
        passed=not problems,
        expected_label=case.expected_label,
        actual_label=output.label,
        expected_probabilities=expected,
        actual_probabilities=actual,
        max_probability_error=error,
        reason="; ".join(problems) or "reproduced",
    )


def _rounded(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{value:.4g}" for value in values) + "]"
