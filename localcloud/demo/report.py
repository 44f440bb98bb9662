"""The local demo's closing report: one self-contained HTML file with plots and tables of a run.

Its input and what it draws: README.md.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "Decision",
    "DecisionKind",
    "RolloutSummary",
    "Sample",
    "Timeline",
    "VariantSeries",
    "render_report",
    "report_html",
]

Value = float | None
METRIC_FIELDS = ("weight_percent", "requests", "error_rate_percent", "latency_p99_ms", "conversion_percent")
PERCENT_FIELDS = ("weight_percent", "error_rate_percent", "conversion_percent")
PLOT_WIDTH_IN, PLOT_HEIGHT_IN, PLOT_DPI = 10.0, 3.4, 100
MARKER_NUMBERS_MAX = 40
"""Beyond this many decisions the weights plot shows markers without their numbers (they would overlap)."""


class DecisionKind(StrEnum):
    GATE = "gate"
    VERDICT = "verdict"
    TRAFFIC = "traffic"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    INCONCLUSIVE = "inconclusive"
    KILL_SWITCH = "kill_switch"
    ALARM = "alarm"
    RETRAINING = "retraining"
    # A package offered to the next environment and registered there (the release chain).
    RELEASE = "release"
    FAILURE = "failure"
    NOTE = "note"

    @classmethod
    def parse(cls, value: str) -> DecisionKind:
        """A kind from its value, any case, spaces or hyphens for underscores, or a rollout outcome's
        status (``promoted``, ``rolled_back``, ``inconclusive``, ``failed``:
        ``lambdas.rollout.payloads.OutcomeStatus``)."""
        normal = value.strip().lower().replace(" ", "_").replace("-", "_")
        normal = _OUTCOME_KINDS.get(normal, normal)
        try:
            return cls(normal)
        except ValueError:
            known = ", ".join(kind.value for kind in cls)
            raise ValueError(f"decision kind {value!r} is not one of {known}") from None


_OUTCOME_KINDS = {"promoted": "promote", "rolled_back": "rollback", "failed": "failure"}


# Colour and marker per kind: the ending kinds stand out (promote green, rollback red, kill switch black).
_KIND_STYLE: dict[DecisionKind, tuple[str, str]] = {
    DecisionKind.GATE: ("#7f7f7f", "s"),
    DecisionKind.VERDICT: ("#1f77b4", "o"),
    DecisionKind.TRAFFIC: ("#17becf", ">"),
    DecisionKind.PROMOTE: ("#2ca02c", "^"),
    DecisionKind.ROLLBACK: ("#d62728", "v"),
    DecisionKind.INCONCLUSIVE: ("#bcbd22", "d"),
    DecisionKind.KILL_SWITCH: ("#000000", "X"),
    DecisionKind.ALARM: ("#ff7f0e", "D"),
    DecisionKind.RETRAINING: ("#e377c2", "*"),
    DecisionKind.RELEASE: ("#7b4173", "h"),
    DecisionKind.FAILURE: ("#8c564b", "P"),
    DecisionKind.NOTE: ("#9467bd", "."),
}


# -- input -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One variant at one moment; None where there was nothing to measure (no requests, no feedback)."""

    time_s: float
    weight_percent: Value = None
    requests: Value = None
    error_rate_percent: Value = None
    latency_p99_ms: Value = None
    conversion_percent: Value = None


@dataclass(frozen=True, slots=True)
class VariantSeries:
    """One endpoint variant's samples: every non-empty metric has one value per entry of ``time_s``."""

    name: str
    time_s: Sequence[float] = ()
    weight_percent: Sequence[Value] = ()
    requests: Sequence[Value] = ()
    error_rate_percent: Sequence[Value] = ()
    latency_p99_ms: Sequence[Value] = ()
    conversion_percent: Sequence[Value] = ()

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a variant needs a name")
        times = tuple(float(t) for t in self.time_s)
        for index, time in enumerate(times):
            if not math.isfinite(time) or time < 0:
                raise ValueError(
                    f"variant {self.name!r}: time_s[{index}] = {time} is not a time since the start"
                )
            if index and time < times[index - 1]:
                raise ValueError(f"variant {self.name!r}: time_s goes backwards at sample {index}")
        object.__setattr__(self, "time_s", times)
        for field_name in METRIC_FIELDS:
            values = tuple(getattr(self, field_name))
            if values and len(values) != len(times):
                raise ValueError(
                    f"variant {self.name!r}: {field_name} has {len(values)} values for {len(times)} "
                    "sample times (give one per sample, or none when it was not recorded)"
                )
            object.__setattr__(self, field_name, tuple(self._checked(field_name, values)))

    def _checked(self, field_name: str, values: Sequence[Value]) -> Iterable[Value]:
        upper = 100.0 if field_name in PERCENT_FIELDS else math.inf
        for index, value in enumerate(values):
            if value is None:
                yield None
                continue
            number = float(value)
            if not (math.isfinite(number) and 0 <= number <= upper):
                limit = "0-100" if upper == 100.0 else "a finite number >= 0"
                raise ValueError(f"variant {self.name!r}: {field_name}[{index}] = {value} is not {limit}")
            yield number

    @classmethod
    def from_samples(cls, name: str, samples: Iterable[Sample]) -> VariantSeries:
        """A series from one ``Sample`` per tick; a metric None in every sample counts as not recorded."""
        rows = list(samples)
        columns = {f: [getattr(row, f) for row in rows] for f in METRIC_FIELDS}
        recorded = {f: values for f, values in columns.items() if any(v is not None for v in values)}
        return cls(name, [row.time_s for row in rows], **recorded)

    def values(self, field_name: str) -> tuple[Value, ...]:
        values: tuple[Value, ...] = getattr(self, field_name)
        return values


@dataclass(frozen=True, slots=True)
class Decision:
    """Something the rollout machinery decided or noticed, at ``time_s`` seconds since the start."""

    time_s: float
    rollout: str
    kind: DecisionKind | str
    text: str

    def __post_init__(self) -> None:
        if not math.isfinite(self.time_s) or self.time_s < 0:
            raise ValueError(f"decision {self.text!r}: time_s = {self.time_s} is not a time since the start")
        object.__setattr__(self, "kind", DecisionKind.parse(self.kind))


@dataclass(frozen=True, slots=True)
class RolloutSummary:
    """How one rollout went.

    ``challenger_requests`` and ``challenger_users``: what the challenger served during the rollout;
    for a rollout that was rolled back, its blast radius.
    """

    version: str
    outcome: str
    steps_percent: Sequence[float] = ()
    """The challenger's traffic steps, in the order it went through them."""
    judged_bakes: int | None = None
    challenger_requests: int | None = None
    challenger_users: int | None = None
    duration_s: float | None = None
    started_s: float | None = None
    """When given, the weights plot shades the rollout from here for ``duration_s``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps_percent", tuple(float(step) for step in self.steps_percent))
        for name in ("judged_bakes", "challenger_requests", "challenger_users", "duration_s", "started_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"rollout {self.version!r}: {name} = {value} must be a number >= 0")
        if any(not 0 <= step <= 100 for step in self.steps_percent):
            raise ValueError(f"rollout {self.version!r}: steps_percent must be within 0-100")


@dataclass(frozen=True, slots=True)
class Timeline:
    title: str = "Rollout report"
    variants: Sequence[VariantSeries] = ()
    decisions: Sequence[Decision] = ()
    rollouts: Sequence[RolloutSummary] = ()

    def __post_init__(self) -> None:
        names = [variant.name for variant in self.variants]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"variant names must be unique, repeated: {repeated}")
        object.__setattr__(self, "variants", tuple(self.variants))
        # Stable: decisions at the same time keep the order they were given in.
        object.__setattr__(self, "decisions", tuple(sorted(self.decisions, key=lambda d: d.time_s)))
        object.__setattr__(self, "rollouts", tuple(self.rollouts))

    @property
    def end_s(self) -> float:
        ends = [v.time_s[-1] for v in self.variants if v.time_s] + [d.time_s for d in self.decisions]
        ends += [r.started_s + (r.duration_s or 0) for r in self.rollouts if r.started_s is not None]
        return max(ends, default=0.0)


# -- plots -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _MetricPlot:
    field_name: str
    title: str
    ylabel: str
    missing_note: str


_METRIC_PLOTS = (
    _MetricPlot("error_rate_percent", "Error rate per variant", "errors (%)", "No error-rate samples"),
    _MetricPlot("latency_p99_ms", "Latency p99 per variant", "p99 latency (ms)", "No latency samples"),
    _MetricPlot("requests", "Requests per variant", "requests per sample", "No request counts"),
    _MetricPlot("conversion_percent", "Conversion per variant", "conversion (%)", "No conversion samples"),
)


def _kind_label(kind: DecisionKind) -> str:
    return kind.value.replace("_", " ")


def _plot_text(text: str) -> str:
    # matplotlib reads $...$ as math and hides legend labels starting with "_".
    escaped = text.replace("$", r"\$")
    return "\u200b" + escaped if escaped.startswith("_") else escaped


def _has_data(timeline: Timeline, field_name: str) -> bool:
    return any(value is not None for v in timeline.variants for value in v.values(field_name))


def _png_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    # No Software/date metadata, so the same timeline gives the same bytes.
    figure.savefig(buffer, format="png", dpi=PLOT_DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _draw(draw: Callable[[Axes], None], timeline: Timeline, title: str, ylabel: str) -> str:
    figure = Figure(figsize=(PLOT_WIDTH_IN, PLOT_HEIGHT_IN), layout="constrained")
    FigureCanvasAgg(figure)  # the Agg canvas: PNG without any display or pyplot state
    axes = figure.add_subplot()
    draw(axes)
    axes.set_title(_plot_text(title))
    axes.set_xlabel("time since start (s)")
    axes.set_ylabel(ylabel)
    axes.set_xlim(0, max(timeline.end_s, 1.0) * 1.02)
    axes.grid(True, alpha=0.3)
    handles, _ = axes.get_legend_handles_labels()
    if handles:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return _png_data_uri(figure)


def _series_lines(axes: Axes, timeline: Timeline, field_name: str, *, steps: bool = False) -> None:
    for index, variant in enumerate(timeline.variants):
        values = [math.nan if v is None else v for v in variant.values(field_name)]
        if not any(not math.isnan(v) for v in values):
            continue
        # A colour per variant, the same in every plot.
        color, label = f"C{index % 10}", _plot_text(variant.name)
        if steps:
            axes.step(variant.time_s, values, where="post", linewidth=2, color=color, label=label)
        else:
            axes.plot(
                variant.time_s, values, marker=".", markersize=4, linewidth=1.2, color=color, label=label
            )


def _decision_lines(axes: Axes, timeline: Timeline) -> None:
    for decision in timeline.decisions:
        color, _ = _KIND_STYLE[DecisionKind(decision.kind)]
        axes.axvline(decision.time_s, color=color, linestyle=":", linewidth=0.8, alpha=0.6)


def _rollout_spans(axes: Axes, timeline: Timeline) -> None:
    for rollout in timeline.rollouts:
        if rollout.started_s is None or not rollout.duration_s:
            continue
        end = rollout.started_s + rollout.duration_s
        axes.axvspan(rollout.started_s, end, color="#888888", alpha=0.08, linewidth=0)
        label = " " + _plot_text(rollout.version)
        # x in data, y in axes coordinates: the label sits on the plot's top edge.
        axes.text(
            rollout.started_s,
            1.0,
            label,
            transform=axes.get_xaxis_transform(),
            va="bottom",
            fontsize="x-small",
            color="#555555",
        )


def _weights(axes: Axes, timeline: Timeline) -> None:
    _rollout_spans(axes, timeline)
    _decision_lines(axes, timeline)
    _series_lines(axes, timeline, "weight_percent", steps=True)
    marker_y = 104.0
    shown: set[DecisionKind] = set()
    numbered = len(timeline.decisions) <= MARKER_NUMBERS_MAX
    for number, decision in enumerate(timeline.decisions, start=1):
        kind = DecisionKind(decision.kind)
        color, marker = _KIND_STYLE[kind]
        label = _kind_label(kind) if kind not in shown else None
        shown.add(kind)
        axes.scatter([decision.time_s], [marker_y], color=color, marker=marker, s=36, zorder=3, label=label)
        if numbered:
            axes.annotate(
                str(number),
                (decision.time_s, marker_y),
                xytext=(0, 5),
                textcoords="offset points",
                ha="center",
                fontsize="x-small",
            )
    axes.set_ylim(-3, 115)


def _plot_section(title: str, image: str | None, note: str) -> str:
    heading = f"<h2>{html.escape(title)}</h2>"
    if image is None:
        return f'<section>{heading}<p class="note">{html.escape(note)}</p></section>'
    return f'<section>{heading}<img alt="{html.escape(title)}" src="{image}"></section>'


def _plots(timeline: Timeline) -> list[str]:
    sections = []
    title = "Traffic weight per variant, with decisions"
    if _has_data(timeline, "weight_percent") or timeline.decisions:
        image = _draw(lambda axes: _weights(axes, timeline), timeline, title, "traffic weight (%)")
        sections.append(_plot_section(title, image, ""))
    else:
        sections.append(_plot_section(title, None, "No traffic weights or decisions were recorded."))
    for plot in _METRIC_PLOTS:
        if not _has_data(timeline, plot.field_name):
            note = f"{plot.missing_note} were recorded for any variant."
            sections.append(_plot_section(plot.title, None, note))
            continue

        def draw(axes: Axes, field_name: str = plot.field_name) -> None:
            _decision_lines(axes, timeline)
            _series_lines(axes, timeline, field_name)
            axes.set_ylim(bottom=0)  # every metric is >= 0: a small wobble must not look like a cliff

        sections.append(_plot_section(plot.title, _draw(draw, timeline, plot.title, plot.ylabel), ""))
    return sections


# -- tables ------------------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{seconds:.3g} s"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], css_class: str) -> str:
    """A table of already escaped cells."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows)
    return f'<table class="{css_class}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>'


def _decisions_section(timeline: Timeline) -> str:
    heading = "<h2>Decisions</h2>"
    if not timeline.decisions:
        return f'<section>{heading}<p class="note">No decisions were recorded.</p></section>'
    rows = []
    for number, decision in enumerate(timeline.decisions, start=1):
        kind = DecisionKind(decision.kind)
        color, _ = _KIND_STYLE[kind]
        badge = f'<span class="kind" style="border-color:{color}">{html.escape(_kind_label(kind))}</span>'
        rows.append(
            [
                str(number),
                f"{decision.time_s:,.1f}",
                html.escape(decision.rollout),
                badge,
                html.escape(decision.text),
            ]
        )
    headers = ("#", "time (s)", "rollout", "kind", "what happened")
    return f"<section>{heading}{_table(headers, rows, 'decisions')}</section>"


def _rollouts_section(timeline: Timeline) -> str:
    heading = "<h2>Rollouts</h2>"
    if not timeline.rollouts:
        return f'<section>{heading}<p class="note">No rollouts were recorded.</p></section>'
    rows = []
    for rollout in timeline.rollouts:
        steps = (
            " → ".join(f"{step:g}" for step in rollout.steps_percent) + " %" if rollout.steps_percent else "—"
        )
        outcome_class = "outcome-" + "".join(c if c.isalnum() else "-" for c in rollout.outcome.lower())
        outcome = html.escape(rollout.outcome.replace("_", " "))
        rows.append(
            [
                html.escape(rollout.version),
                f'<span class="{html.escape(outcome_class)}">{outcome}</span>',
                html.escape(steps),
                _count(rollout.judged_bakes),
                _count(rollout.challenger_requests),
                _count(rollout.challenger_users),
                _duration(rollout.duration_s),
            ]
        )
    headers = (
        "version",
        "outcome",
        "challenger steps",
        "judged bakes",
        "challenger requests",
        "challenger users",
        "duration",
    )
    note = (
        '<p class="note">For a rollout that was rolled back, the requests and users its challenger '
        "served are its blast radius.</p>"
    )
    return f"<section>{heading}{_table(headers, rows, 'rollouts')}{note}</section>"


# -- page --------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .summary { color: #555; margin-top: 0; }
section { margin: 1.5rem 0; } img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } .note { color: #666; font-style: italic; }
.kind { border-left: 4px solid; padding-left: 0.4rem; white-space: nowrap; }
.outcome-promoted { color: #1a7f37; font-weight: 600; }
.outcome-rolled-back, .outcome-failed { color: #c62828; font-weight: 600; }
"""


def report_html(timeline: Timeline) -> str:
    """The report as one HTML document (images embedded)."""
    title = html.escape(timeline.title)
    summary = (
        f"{len(timeline.variants)} variant(s), {len(timeline.decisions)} decision(s), "
        f"{len(timeline.rollouts)} rollout(s) over {_duration(timeline.end_s)}"
    )
    body = [f"<h1>{title}</h1>", f'<p class="summary">{html.escape(summary)}</p>']
    body += _plots(timeline)
    body += [_decisions_section(timeline), _rollouts_section(timeline)]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def render_report(timeline: Timeline, path: Path) -> Path:
    """Write the report to ``path`` (its directory is created) and return the path."""
    document = report_html(timeline)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path
