"""Composite alarms' rules: parsed into a tree, their references listed, evaluated against alarm states."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from localcloud.cloudwatch.models import (
    STATES,
    AlarmConfigurationError,
    State,
)


@dataclass(frozen=True)
class StateIs:
    state: State
    alarm: str


@dataclass(frozen=True)
class Constant:
    value: bool


@dataclass(frozen=True)
class Not:
    operand: RuleNode


@dataclass(frozen=True)
class Junction:
    operator: Literal["AND", "OR"]
    operands: tuple[RuleNode, ...]


RuleNode = StateIs | Constant | Not | Junction


_RULE_TOKEN = re.compile(r'\s*(?:(?P<quoted>"[^"]*")|(?P<symbol>[()])|(?P<word>[^\s()"]+))')


def parse_alarm_rule(rule: str) -> RuleNode:
    """A composite alarm's `AlarmRule`; `AlarmConfigurationError` names what is wrong."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while rule[position:].strip():
        match = _RULE_TOKEN.match(rule, position)
        if match is None or match.lastgroup is None:
            raise AlarmConfigurationError(f"AlarmRule {rule!r}: cannot read it at position {position}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    parser = _RuleParser(rule, tokens)
    node = parser.disjunction()
    if parser.index < len(tokens):
        raise AlarmConfigurationError(f"AlarmRule {rule!r}: unexpected {tokens[parser.index][1]!r}")
    return node


class _RuleParser:
    def __init__(self, rule: str, tokens: list[tuple[str, str]]) -> None:
        self.rule = rule
        self.tokens = tokens
        self.index = 0

    def _peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise AlarmConfigurationError(f"AlarmRule {self.rule!r}: ends where a condition was expected")
        self.index += 1
        return self.tokens[self.index - 1]

    def _expect(self, text: str) -> None:
        if self.index >= len(self.tokens):
            raise AlarmConfigurationError(f"AlarmRule {self.rule!r}: expected {text!r}, found the end")
        _, found = self._take()
        if found != text:
            raise AlarmConfigurationError(f"AlarmRule {self.rule!r}: expected {text!r}, found {found!r}")

    def disjunction(self) -> RuleNode:
        operands = [self._conjunction()]
        while self._peek() == "OR":
            self.index += 1
            operands.append(self._conjunction())
        return operands[0] if len(operands) == 1 else Junction("OR", tuple(operands))

    def _conjunction(self) -> RuleNode:
        operands = [self._negation()]
        while self._peek() == "AND":
            self.index += 1
            operands.append(self._negation())
        return operands[0] if len(operands) == 1 else Junction("AND", tuple(operands))

    def _negation(self) -> RuleNode:
        if self._peek() == "NOT":
            self.index += 1
            return Not(self._negation())
        return self._atom()

    def _atom(self) -> RuleNode:
        _, text = self._take()
        if text == "(":
            node = self.disjunction()
            self._expect(")")
            return node
        if text in ("TRUE", "FALSE"):
            return Constant(text == "TRUE")
        if text in STATES:
            self._expect("(")
            name_kind, name = self._take()
            if name_kind == "symbol":
                raise AlarmConfigurationError(f"AlarmRule {self.rule!r}: {text}() names no alarm")
            self._expect(")")
            return StateIs(text, name.strip('"'))
        raise AlarmConfigurationError(
            f"AlarmRule {self.rule!r}: unexpected {text!r} (expected ALARM(...), OK(...), "
            "INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or a parenthesis; AND, OR and NOT are upper case)"
        )


def rule_references(node: RuleNode) -> list[str]:
    """The alarms a rule names, in order, as written (name or ARN)."""
    if isinstance(node, StateIs):
        return [node.alarm]
    if isinstance(node, Not):
        return rule_references(node.operand)
    if isinstance(node, Junction):
        return [name for operand in node.operands for name in rule_references(operand)]
    return []


def rule_holds(node: RuleNode, state_of: Callable[[str], str]) -> bool:
    if isinstance(node, StateIs):
        return state_of(node.alarm) == node.state
    if isinstance(node, Constant):
        return node.value
    if isinstance(node, Not):
        return not rule_holds(node.operand, state_of)
    results = (rule_holds(operand, state_of) for operand in node.operands)
    return all(results) if node.operator == "AND" else any(results)
