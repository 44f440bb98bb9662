"""The evidence ledger: every decision of a rollout, append-only, and its summary for the registry.

Entries are keyed by (rollout id, sequence). The workflow gives each decision a fixed sequence number
(its place in the run), so a retried step writes the same key: the store writes an entry only where
none is, a retry of an already recorded entry is a no-op, and an entry that differs from the one on
record is refused (``LedgerConflict``) instead of overwriting it. Nothing recorded is ever lost.

``summarize`` condenses the entries into the model package's CustomerMetadataProperties: at most a
few keys, each value at most 256 characters of the characters SageMaker allows there. The full
evidence stays in the ledger; the summary names the rollout id to find it.

Pure domain code: pydantic and the standard library; the DynamoDB adapter is
``lambdas.rollout.aws.ledger_table``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from lambdas.rollout.judge import JudgeResult
from lambdas.rollout.payloads import OutcomeStatus, RolloutOutcome, StepOutcome

__all__ = [
    "METADATA_VALUE_MAX",
    "EntryKind",
    "Ledger",
    "LedgerConflict",
    "LedgerEntry",
    "LedgerStore",
    "deployment_payload",
    "gate_payload",
    "metadata_value",
    "outcome_payload",
    "summarize",
    "traffic_payload",
    "verdict_payload",
]

METADATA_VALUE_MAX = 256
METADATA_KEY_PREFIX = "rollout"
_METADATA_PUNCTUATION = frozenset("_.:/=+-@ ")
_ELLIPSIS = "..."


class EntryKind(StrEnum):
    GATE_RESULT = "gate_result"
    JUDGE_VERDICT = "judge_verdict"
    TRAFFIC_STEP = "traffic_step"
    DEPLOYMENT = "deployment"
    OUTCOME = "outcome"
    APPROVAL = "approval"
    """A person's approval at a human gate (lambdas/rollout/tasks/approval.py)."""


class LedgerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout_id: str = Field(min_length=1, max_length=256)
    sequence: int = Field(ge=0, description="the entry's place in the rollout, fixed per decision")
    recorded_at: int = Field(ge=0, description="epoch seconds")
    kind: EntryKind
    payload: dict[str, JsonValue]

    def same_record(self, other: LedgerEntry) -> bool:
        """The same decision, whenever it was written: a retry may carry a later timestamp."""
        return (self.rollout_id, self.sequence, self.kind, _canonical(self.payload)) == (
            other.rollout_id,
            other.sequence,
            other.kind,
            _canonical(other.payload),
        )


class LedgerConflict(Exception):
    """A different entry is already recorded under this (rollout id, sequence); it is kept."""


class LedgerStore(Protocol):
    def put_if_absent(self, entry: LedgerEntry) -> bool:
        """Write the entry unless one exists under its key; False if one does."""
        ...

    def get(self, rollout_id: str, sequence: int) -> LedgerEntry | None: ...

    def entries(self, rollout_id: str) -> list[LedgerEntry]:
        """All entries of a rollout in sequence order, read consistently."""
        ...


class Ledger:
    def __init__(self, store: LedgerStore) -> None:
        self._store = store

    def append(self, entry: LedgerEntry) -> bool:
        """Record the entry; False if the same entry was recorded before. LedgerConflict if another was."""
        if self._store.put_if_absent(entry):
            return True
        existing = self._store.get(entry.rollout_id, entry.sequence)
        if existing is None or not existing.same_record(entry):
            recorded = existing.kind.value if existing else "an entry that has since vanished"
            raise LedgerConflict(
                f"rollout {entry.rollout_id} sequence {entry.sequence} already holds {recorded}; "
                f"the new {entry.kind.value} entry was not written"
            )
        return False

    def entries(self, rollout_id: str) -> list[LedgerEntry]:
        return self._store.entries(rollout_id)

    def get(self, rollout_id: str, sequence: int) -> LedgerEntry | None:
        """The entry recorded at this place, if any (a retried step reads what it decided before)."""
        return self._store.get(rollout_id, sequence)


def _canonical(payload: dict[str, JsonValue]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


# --- payloads of the entry kinds (what summarize reads) --------------------------------------------


def gate_payload(gate: str, status: str, detail: dict[str, JsonValue] | None = None) -> dict[str, JsonValue]:
    return {"gate": gate, "status": status, "detail": detail or {}}


def verdict_payload(step: StepOutcome, result: JudgeResult) -> dict[str, JsonValue]:
    """The verdict with every metric's numbers, and what the workflow did about it."""
    evidence: Any = [e.model_dump(mode="json") for e in result.evidence]
    return {
        "step": step.step_index,
        "bake": step.bake,
        "challenger_percent": step.challenger_percent,
        "verdict": result.verdict.value,
        "reason": result.reason,
        "action": step.action.value,
        "action_reason": step.reason,
        "champion_requests": step.champion_requests,
        "challenger_requests": step.challenger_requests,
        "evidence": evidence,
    }


def traffic_payload(
    step_index: int, challenger_percent: int, champion_requests: int, challenger_requests: int
) -> dict[str, JsonValue]:
    return {
        "step": step_index,
        "challenger_percent": challenger_percent,
        "champion_requests": champion_requests,
        "challenger_requests": challenger_requests,
    }


def deployment_payload(action: str, endpoint_config: str, **detail: JsonValue) -> dict[str, JsonValue]:
    return {"action": action, "endpoint_config": endpoint_config, **detail}


def outcome_payload(outcome: RolloutOutcome) -> dict[str, JsonValue]:
    return {"status": outcome.status.value, "reason": outcome.reason}


# --- the summary for the model package -------------------------------------------------------------


def metadata_value(text: str, *, keep: Literal["head", "tail"] = "head") -> str:
    """Text as a CustomerMetadataProperties value: allowed characters only, at most 256 of them.

    A long value keeps its start, or with ``keep="tail"`` its end (the latest verdicts matter most).
    """
    cleaned = "".join(c if c.isalnum() or c in _METADATA_PUNCTUATION else " " for c in text)
    collapsed = " ".join(cleaned.split()) or "-"
    if len(collapsed) <= METADATA_VALUE_MAX:
        return collapsed
    room = METADATA_VALUE_MAX - len(_ELLIPSIS)
    if keep == "tail":
        return _ELLIPSIS + collapsed[-room:].lstrip()
    return collapsed[:room].rstrip() + _ELLIPSIS


def summarize(entries: Sequence[LedgerEntry]) -> dict[str, str]:
    """A compact account of a rollout for the package's metadata; the ledger keeps the details."""
    ordered = sorted(entries, key=lambda e: e.sequence)
    head = {"id": ordered[0].rollout_id if ordered else "-", "entries": str(len(ordered))}
    head |= _outcome_summary(_of_kind(ordered, EntryKind.OUTCOME))
    head["gates"] = _joined(
        f"{p.get('gate')}={p.get('status')}" for p in _of_kind(ordered, EntryKind.GATE_RESULT)
    )
    cost = _cost_summary(_of_kind(ordered, EntryKind.JUDGE_VERDICT))
    if cost is not None:
        head["cost"] = cost
    tail = {
        "verdicts": _joined(
            f"{p.get('challenger_percent')}pct={p.get('verdict')}"
            for p in _of_kind(ordered, EntryKind.JUDGE_VERDICT)
        ),
        "traffic": _joined(
            f"{p.get('challenger_percent')}pct:{p.get('champion_requests')}/{p.get('challenger_requests')}"
            for p in _of_kind(ordered, EntryKind.TRAFFIC_STEP)
        ),
    }
    summary = {_key(name): metadata_value(value) for name, value in head.items()}
    return summary | {_key(name): metadata_value(value, keep="tail") for name, value in tail.items()}


def _key(name: str) -> str:
    return f"{METADATA_KEY_PREFIX}.{name}"


def _of_kind(entries: Iterable[LedgerEntry], kind: EntryKind) -> list[dict[str, JsonValue]]:
    return [entry.payload for entry in entries if entry.kind is kind]


def _cost_summary(verdicts: list[dict[str, JsonValue]]) -> str | None:
    """The last cost comparison of the judge's looks, in USD per 1,000 predictions."""
    for payload in reversed(verdicts):
        cost = payload.get("cost")
        if isinstance(cost, dict) and "increase" in cost:
            increase = float(str(cost["increase"]))
            return (
                f"usd_per_1000 challenger={cost.get('challenger_cost_per_1000')} "
                f"champion={cost.get('champion_cost_per_1000')} increase={increase * 100:+.0f}pct "
                f"instances={cost.get('challenger_instances')}/{cost.get('champion_instances')} "
                f"{cost.get('instance_type')}"
            )
    return None


def _outcome_summary(outcomes: list[dict[str, JsonValue]]) -> dict[str, str]:
    if not outcomes:
        return {"outcome": "in progress"}
    last = outcomes[-1]
    summary = {"outcome": str(last.get("status", "-"))}
    if last.get("status") != OutcomeStatus.PROMOTED.value:
        summary["reason"] = str(last.get("reason") or "-")
    return summary


def _joined(parts: Iterable[str]) -> str:
    return " ".join(parts) or "-"
