"""CloudWatch metric math for alarms: the subset this project's alarms use, evaluated as CloudWatch does."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

# A time series: period start (epoch seconds) -> value; a timestamp without data is absent.
Series = dict[int, float]
Value = float | Series

SUPPORTED_FUNCTIONS = ("FILL", "IF")


class MetricMathError(ValueError):
    """An expression this evaluator cannot parse or does not support."""


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Reference:
    query_id: str


@dataclass(frozen=True)
class Negation:
    operand: Node


@dataclass(frozen=True)
class Binary:
    operator: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    function: str
    arguments: tuple[Node, ...]


Node = Number | Reference | Negation | Binary | Call

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<operator>==|!=|<=|>=|&&|\|\||[-+*/^<>(),])"
    r"|(?P<string>\"[^\"]*\"))"
)
_QUERY_ID = re.compile(r"[a-z][A-Za-z0-9_]*")
_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int


def _tokens(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            where = len(text) - len(text[position:].lstrip())
            raise MetricMathError(f"expression {text!r}: unexpected character at position {where}")
        tokens.append(Token(match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup)))
        position = match.end()
    return tokens


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, its syntax tree and the query ids it reads."""

    text: str
    root: Node

    @property
    def references(self) -> frozenset[str]:
        return frozenset(_references(self.root))


def _references(node: Node) -> Iterator[str]:
    if isinstance(node, Reference):
        yield node.query_id
    elif isinstance(node, Negation):
        yield from _references(node.operand)
    elif isinstance(node, Binary):
        yield from _references(node.left)
        yield from _references(node.right)
    elif isinstance(node, Call):
        for argument in node.arguments:
            yield from _references(argument)


def parse_expression(text: str) -> Expression:
    """Parse a metric math expression; `MetricMathError` names what is wrong or unsupported."""
    parser = _Parser(text, _tokens(text))
    root = parser.expression()
    if not parser.at_end():
        raise MetricMathError(
            f"expression {text!r}: unexpected {parser.peek_text()!r} after a complete expression"
        )
    return Expression(text=text, root=root)


class _Parser:
    """Recursive descent, loosest binding first: OR, AND, comparison, + -, * /, unary -, ^."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self._text = text
        self._tokens = tokens
        self._index = 0

    def at_end(self) -> bool:
        return self._index >= len(self._tokens)

    def peek_text(self) -> str:
        return "end of expression" if self.at_end() else self._tokens[self._index].text

    def _peek(self) -> Token | None:
        return None if self.at_end() else self._tokens[self._index]

    def _accept(self, *texts: str) -> str | None:
        token = self._peek()
        if token is not None and token.kind in ("operator", "name") and token.text in texts:
            self._index += 1
            return token.text
        return None

    def _expect(self, text: str) -> None:
        if self._accept(text) is None:
            raise MetricMathError(f"expression {self._text!r}: expected {text!r}, found {self.peek_text()!r}")

    def expression(self) -> Node:
        node = self._conjunction()
        while self._accept("OR", "||"):
            node = Binary("OR", node, self._conjunction())
        return node

    def _conjunction(self) -> Node:
        node = self._comparison()
        while self._accept("AND", "&&"):
            node = Binary("AND", node, self._comparison())
        return node

    def _comparison(self) -> Node:
        node = self._sum()
        while (symbol := self._accept(*_COMPARISONS)) is not None:
            node = Binary(symbol, node, self._sum())
        return node

    def _sum(self) -> Node:
        node = self._product()
        while (symbol := self._accept("+", "-")) is not None:
            node = Binary(symbol, node, self._product())
        return node

    def _product(self) -> Node:
        node = self._unary()
        while (symbol := self._accept("*", "/")) is not None:
            node = Binary(symbol, node, self._unary())
        return node

    def _unary(self) -> Node:
        if self._accept("-"):
            return Negation(self._unary())
        return self._power()

    def _power(self) -> Node:
        base = self._primary()
        if self._accept("^"):
            return Binary("^", base, self._unary())  # right-associative
        return base

    def _primary(self) -> Node:
        token = self._peek()
        if token is None:
            raise MetricMathError(f"expression {self._text!r}: ends where a value was expected")
        self._index += 1
        if token.kind == "number":
            return Number(float(token.text))
        if token.kind == "operator" and token.text == "(":
            node = self.expression()
            self._expect(")")
            return node
        if token.kind == "name":
            if self._accept("("):
                return self._call(token.text)
            if _QUERY_ID.fullmatch(token.text):
                return Reference(token.text)
            raise MetricMathError(
                f"expression {self._text!r}: {token.text!r} is neither a query id (ids start with a "
                f"lowercase letter) nor a supported function ({', '.join(SUPPORTED_FUNCTIONS)})"
            )
        raise MetricMathError(
            f"expression {self._text!r}: unexpected {token.text!r} at position {token.position}"
        )

    def _call(self, function: str) -> Call:
        if function not in SUPPORTED_FUNCTIONS:
            raise MetricMathError(
                f"expression {self._text!r}: metric math function {function} is not supported by the local "
                f"alarm evaluator (supported: {', '.join(SUPPORTED_FUNCTIONS)})"
            )
        arguments: list[Node] = []
        if not self._accept(")"):
            while True:
                arguments.append(self._argument(function))
                if self._accept(")"):
                    break
                self._expect(",")
        expected = {"FILL": (2,), "IF": (2, 3)}[function]
        if len(arguments) not in expected:
            raise MetricMathError(
                f"expression {self._text!r}: {function} takes {' or '.join(map(str, expected))} arguments, "
                f"got {len(arguments)}"
            )
        return Call(function, tuple(arguments))

    def _argument(self, function: str) -> Node:
        token = self._peek()
        if token is not None and token.kind == "name" and token.text in ("REPEAT", "LINEAR"):
            raise MetricMathError(
                f"expression {self._text!r}: {function}(..., {token.text}) is not supported by the local "
                "alarm evaluator (only a number or a series fills)"
            )
        if token is not None and token.kind == "string":
            raise MetricMathError(f"expression {self._text!r}: string argument {token.text} is not supported")
        return self.expression()


def evaluate_expression(
    expression: Expression, series: Mapping[str, Series], timestamps: Sequence[int]
) -> Series:
    """The expression's time series over `timestamps` (the period starts of the evaluated range).

    `series` holds every query id's series (metric queries and expressions evaluated before this one).
    """
    unknown = sorted(expression.references - series.keys())
    if unknown:
        raise MetricMathError(f"expression {expression.text!r} reads unknown ids: {', '.join(unknown)}")
    result = _Evaluation(series, timestamps).value(expression.root)
    if not isinstance(result, dict):
        raise MetricMathError(
            f"expression {expression.text!r} gives a single number; an alarm needs a time series"
        )
    return result


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": math.pow,
}
_LOGIC: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "AND": lambda left, right: left != 0 and right != 0,
    "OR": lambda left, right: left != 0 or right != 0,
}


def _apply(symbol: str, left: float, right: float) -> float | None:
    """One datapoint of a binary operation; None drops it (division by zero, a math domain error)."""
    if symbol in _LOGIC:
        return 1.0 if _LOGIC[symbol](left, right) else 0.0
    try:
        value = _ARITHMETIC[symbol](left, right)
    except (ZeroDivisionError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


class _Evaluation:
    def __init__(self, series: Mapping[str, Series], timestamps: Sequence[int]) -> None:
        self._series = series
        self._timestamps = timestamps

    def value(self, node: Node) -> Value:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Reference):
            return dict(self._series[node.query_id])
        if isinstance(node, Negation):
            operand = self.value(node.operand)
            return {t: -v for t, v in operand.items()} if isinstance(operand, dict) else -operand
        if isinstance(node, Binary):
            return self._binary(node.operator, self.value(node.left), self.value(node.right))
        if node.function == "FILL":
            return self._fill(*node.arguments)
        return self._if(*node.arguments)

    @staticmethod
    def _binary(symbol: str, left: Value, right: Value) -> Value:
        if isinstance(left, dict) and isinstance(right, dict):
            # Between two series a missing value is 0, over the timestamps either series has.
            timestamps = sorted(left.keys() | right.keys())
            pairs = ((t, left.get(t, 0.0), right.get(t, 0.0)) for t in timestamps)
        elif isinstance(left, dict):
            pairs = ((t, v, float(right)) for t, v in sorted(left.items()))  # type: ignore[arg-type]
        elif isinstance(right, dict):
            pairs = ((t, float(left), v) for t, v in sorted(right.items()))
        else:
            scalar = _apply(symbol, left, right)
            if scalar is None:
                raise MetricMathError(f"{left} {symbol} {right} has no value")
            return scalar
        result: Series = {}
        for timestamp, a, b in pairs:
            value = _apply(symbol, a, b)
            if value is not None:
                result[timestamp] = value
        return result

    def _fill(self, target: Node, filler: Node) -> Series:
        series = self.value(target)
        if not isinstance(series, dict):
            raise MetricMathError("FILL's first argument must be a time series, not a number")
        fill = self.value(filler)
        result: Series = {}
        for timestamp in self._timestamps:
            if timestamp in series:
                result[timestamp] = series[timestamp]
            elif isinstance(fill, dict):
                if timestamp in fill:
                    result[timestamp] = fill[timestamp]
            else:
                result[timestamp] = fill
        return result

    def _if(self, condition_node: Node, true_node: Node, false_node: Node | None = None) -> Value:
        condition = self.value(condition_node)
        when_true = self.value(true_node)
        when_false = None if false_node is None else self.value(false_node)
        if not isinstance(condition, dict):
            if condition != 0:
                return when_true
            return {} if when_false is None else when_false
        result: Series = {}
        for timestamp, flag in sorted(condition.items()):
            if flag != 0:
                result[timestamp] = (
                    when_true.get(timestamp, 0.0) if isinstance(when_true, dict) else when_true
                )
            elif isinstance(when_false, dict):
                if timestamp in when_false:
                    result[timestamp] = when_false[timestamp]
            elif when_false is not None:
                result[timestamp] = when_false
        return result
