"""Pre-traffic gates: may a candidate model version take any traffic at all?

Three gates run before the challenger sees a single request, and every one of them always runs and
reports, so the evidence shows all that is wrong with a candidate, not only the first thing:

* golden inputs      -- fixed inputs stored with the model package, with the outputs they must give;
                        the deployed challenger (asked by the rollout before it takes any traffic)
                        must return every expected label exactly and every expected class
                        probability within ``golden_tolerance``; a case it gives no prediction for
                        (``Unanswered``: a refused input, a failing container) fails.
* metric thresholds  -- the candidate's registered held-out metrics (accuracy, precision, recall, F1,
                        AUC) against absolute minimums, and against the champion's registered metrics:
                        none may drop by more than ``max_relative_drop`` relative to the champion's.
* input drift        -- recently captured requests against the training baseline, feature by feature:
                        the population stability index (PSI) and the two-sample Kolmogorov-Smirnov
                        test. A feature drifts when PSI > ``psi_max`` or the KS p-value is below
                        ``ks_pvalue_min`` divided by the number of features (Bonferroni).

A gate that cannot be evaluated (no golden cases, too few captured requests) reports
``insufficient_data``, never ``passed``; whether that blocks promotion is a setting
(``require_golden_cases``, ``require_drift_data``), and both block by default.

PSI uses ``psi_bins`` bins (10 by default, deciles: the convention the usual PSI thresholds of
0.1 / 0.2 / 0.25 were set for) cut at the baseline's own quantiles, so each bin holds about a tenth of
the training data. An empty bin would make PSI infinite, so every bin's count gets ``psi_smoothing``
added (0.5 by default: the Jeffreys prior) before the proportions are taken, in the baseline and in
the captured data alike.

The KS p-value is exact (lattice-path counting in integers) for small samples and otherwise the
Kolmogorov distribution's tail with Stephens' small-sample correction.

One module per gate, the statistics in ``statistics``. Pure domain code: pydantic, ``math`` and
``bisect`` only (no numpy, so it stays light in a Lambda and in the training image); no boto3, no
network, no clock; no other package of ``lambdas``.
"""

from lambdas.gates.drift import (
    BASELINE_MAX_VALUES,
    CapturedFeatures,
    DriftGateResult,
    FeatureDrift,
    TrainingBaseline,
    drift_gate,
)
from lambdas.gates.golden import (
    CandidateAnswer,
    GoldenCase,
    GoldenCaseResult,
    GoldenGateResult,
    GoldenSet,
    Prediction,
    Unanswered,
    golden_gate,
)
from lambdas.gates.metrics import MetricCheck, MetricGateResult, metric_gate
from lambdas.gates.report import GatesReport, evaluate_gates
from lambdas.gates.settings import (
    CLASSIFICATION_METRICS,
    ClassificationMetric,
    GateName,
    GateSettings,
    GateStatus,
)
from lambdas.gates.statistics import (
    EXACT_KS_MAX_CELLS,
    KsTest,
    kolmogorov_sf,
    ks_two_sample,
    population_stability_index,
    quantile_edges,
)

__all__ = [
    "BASELINE_MAX_VALUES",
    "CLASSIFICATION_METRICS",
    "EXACT_KS_MAX_CELLS",
    "CandidateAnswer",
    "CapturedFeatures",
    "ClassificationMetric",
    "DriftGateResult",
    "FeatureDrift",
    "GateName",
    "GateSettings",
    "GateStatus",
    "GatesReport",
    "GoldenCase",
    "GoldenCaseResult",
    "GoldenGateResult",
    "GoldenSet",
    "KsTest",
    "MetricCheck",
    "MetricGateResult",
    "Prediction",
    "TrainingBaseline",
    "Unanswered",
    "drift_gate",
    "evaluate_gates",
    "golden_gate",
    "kolmogorov_sf",
    "ks_two_sample",
    "metric_gate",
    "population_stability_index",
    "quantile_edges",
]
