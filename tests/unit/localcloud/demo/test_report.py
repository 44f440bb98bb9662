"""The demo's HTML report: a self-contained page with embedded plots, the decisions and rollouts tables,
escaped text, notes instead of plots where nothing was recorded, and clear errors on bad input."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from lambdas.rollout.payloads import OutcomeStatus
from localcloud.demo.report import (
    Decision,
    DecisionKind,
    RolloutSummary,
    Sample,
    Timeline,
    VariantSeries,
    render_report,
    report_html,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def _run() -> Timeline:
    """Two rollouts: v2 promoted step by step, then v3 rolled back at 25 % when its errors rise."""
    times = [float(t) for t in range(0, 600, 30)]
    challenger_weight = [0, 0, 5, 5, 25, 25, 50, 50, 100, 100, 0, 0, 5, 5, 25, 25, 0, 0, 0, 0]
    champion = VariantSeries(
        name="champion",
        time_s=times,
        weight_percent=[100 - w for w in challenger_weight],
        requests=[300 - 3 * w for w in challenger_weight],
        error_rate_percent=[0.5] * len(times),
        latency_p99_ms=[42.0] * len(times),
        conversion_percent=[10.0] * len(times),
    )
    challenger = VariantSeries.from_samples(
        "challenger",
        (
            Sample(
                time_s=t,
                weight_percent=w,
                requests=3 * w,
                # No requests, nothing to measure: a gap, not a zero.
                error_rate_percent=(9.0 if 360 <= t < 480 else 0.6) if w else None,
                latency_p99_ms=45.0 if w else None,
                conversion_percent=10.5 if w else None,
            )
            for t, w in zip(times, challenger_weight, strict=True)
        ),
    )
    decisions = [
        Decision(10, "v2", DecisionKind.GATE, "all gates passed"),
        Decision(60, "v2", "traffic", "challenger at 5 %"),
        Decision(240, "v2", "verdict", "promote: no harm seen"),
        Decision(250, "v2", "promote", "v2 is the champion"),
        Decision(330, "v3", "gate", "all gates passed"),
        Decision(450, "v3", "alarm", "challenger 5XX > 5 % <script>alert('x')</script>"),
        Decision(460, "v3", "rolled_back", "rolled back & champion restored"),
        Decision(470, "v3", "Kill switch", "kill switch on"),
    ]
    rollouts = [
        RolloutSummary("v2", "promoted", (5, 25, 50, 100), 4, 9_000, 1_200, duration_s=240, started_s=10),
        RolloutSummary(
            "v3 <b>bold</b>", "rolled_back", (5, 25), 2, 1_650, 412, duration_s=130, started_s=330
        ),
    ]
    return Timeline("Demo run <1>", (champion, challenger), decisions, rollouts)


def _images(document: str) -> list[bytes]:
    return [base64.b64decode(data) for data in IMAGE.findall(document)]


def test_the_report_embeds_every_plot_and_both_tables(tmp_path: Path) -> None:
    path = render_report(_run(), tmp_path / "out" / "report.html")
    document = path.read_text(encoding="utf-8")
    images = _images(document)
    assert len(images) == 5  # weights, error rate, latency, requests, conversion
    assert all(image.startswith(PNG_SIGNATURE) and len(image) > 5_000 for image in images)
    # Self-contained: no script, no reference to anything outside the file.
    assert "<script" not in document
    assert not re.search(r'(?:src|href)="(?!data:)', document)
    decisions = document.split('<table class="decisions">')[1].split("</table>")[0]
    assert decisions.count("<tr>") == 1 + 8  # header and one row per decision, in time order
    assert decisions.index("all gates passed") < decisions.index("challenger at 5 %")
    assert "kill switch" in decisions and "rolled back &amp; champion restored" in decisions
    assert ">rollback</span>" in decisions  # an outcome status ("rolled_back") as its decision kind
    rollouts = document.split('<table class="rollouts">')[1].split("</table>")[0]
    assert "5 → 25 → 50 → 100 %" in rollouts
    assert "1,650" in rollouts and "412" in rollouts and "2 min 10 s" in rollouts
    assert 'class="outcome-rolled-back"' in rollouts


def test_every_piece_of_text_is_escaped() -> None:
    document = report_html(_run())
    assert "<script>alert" not in document and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in document
    assert "<b>bold</b>" not in document and "v3 &lt;b&gt;bold&lt;/b&gt;" in document
    assert "<title>Demo run &lt;1&gt;</title>" in document


def test_the_same_timeline_gives_the_same_bytes() -> None:
    assert report_html(_run()) == report_html(_run())


def test_nothing_recorded_gives_notes_instead_of_plots(tmp_path: Path) -> None:
    document = render_report(Timeline(), tmp_path / "empty.html").read_text(encoding="utf-8")
    assert _images(document) == []
    assert "No traffic weights or decisions were recorded." in document
    assert "No latency samples were recorded for any variant." in document
    assert "No decisions were recorded." in document
    assert "No rollouts were recorded." in document


def test_a_metric_not_recorded_is_a_note_and_the_rest_is_plotted() -> None:
    only_weights = VariantSeries("champion", [0, 30, 60], weight_percent=[100, 100, 100])
    silent = VariantSeries("challenger")  # deployed, never sampled
    unmeasured = VariantSeries.from_samples("shadow", [Sample(0.0, weight_percent=0), Sample(30.0)])
    document = report_html(Timeline(variants=(only_weights, silent, unmeasured)))
    assert len(_images(document)) == 1
    assert "No conversion samples were recorded for any variant." in document
    assert "No error-rate samples were recorded for any variant." in document


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: VariantSeries("challenger", [0, 30, 60], error_rate_percent=[1.0, 2.0]),
            r"variant 'challenger': error_rate_percent has 2 values for 3 sample times",
        ),
        (lambda: VariantSeries("a", [0, 60, 30]), "time_s goes backwards at sample 2"),
        (lambda: VariantSeries("a", [0], weight_percent=[120]), r"weight_percent\[0\] = 120 is not 0-100"),
        (lambda: VariantSeries("a", [0], latency_p99_ms=[float("nan")]), r"latency_p99_ms\[0\] = nan"),
        (lambda: VariantSeries(" "), "a variant needs a name"),
        (lambda: Decision(1, "v2", "reboot", "?"), "decision kind 'reboot' is not one of gate, verdict"),
        (lambda: RolloutSummary("v2", "promoted", challenger_requests=-1), "challenger_requests = -1"),
        (
            lambda: Timeline(variants=(VariantSeries("a"), VariantSeries("a"))),
            r"variant names must be unique, repeated: \['a'\]",
        ),
    ],
)
def test_bad_input_is_a_clear_error(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=message):
        build()


def test_plot_labels_with_dollars_and_underscores_render() -> None:
    # matplotlib would parse "$...$" as math (and fail on bad math) and hide labels starting with "_".
    odd = VariantSeries("_cost $x^ {$ variant", [0, 30], weight_percent=[50, 50])
    document = report_html(
        Timeline(variants=(odd,), rollouts=(RolloutSummary("$v$", "promoted", started_s=0, duration_s=30),))
    )
    assert len(_images(document)) == 1


def test_every_rollout_outcome_is_a_decision_kind_of_its_own() -> None:
    kinds = {status: DecisionKind.parse(status.value) for status in OutcomeStatus}
    assert kinds[OutcomeStatus.INCONCLUSIVE] is DecisionKind.INCONCLUSIVE
    assert len(set(kinds.values())) == len(kinds)
