"""Each state machine definition parsed once per process by moto's Step Functions.

moto parses a definition with ANTLR when the state machine is created (to validate it) and again when
each execution starts: about 0.06 s of CPU each time for the rollout workflow's 25 KB definition, a tenth
of a rollout test's main process. The parse tree of a text is always the same, so it is kept; the
evaluation components are built from it afresh for every caller (moto's `Preprocessor`), so executions
share no state. A definition with syntax errors is refused as before, and not kept.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from antlr4 import CommonTokenStream, InputStream, ParserRuleContext
from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.parse.asl_parser import (
    AmazonStateLanguageParser,
    ASLParserException,
    SyntaxErrorListener,
)
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor


@functools.lru_cache(maxsize=64)
def parse_tree(definition: str) -> ParserRuleContext:
    """The definition's parse tree, as `AmazonStateLanguageParser.parse` builds it."""
    errors = SyntaxErrorListener()  # type: ignore[no-untyped-call]  # moto: untyped
    parser = ASLParser(CommonTokenStream(ASLLexer(InputStream(definition))))
    parser.removeErrorListeners()
    parser.addErrorListener(errors)
    tree = parser.state_machine()  # type: ignore[no-untyped-call]
    if errors.errors:
        raise ASLParserException(errors=errors.errors)
    return tree


def _parse(definition: str) -> tuple[EvalComponent, ParserRuleContext]:
    tree = parse_tree(definition)
    return Preprocessor().visit(tree), tree


@contextmanager
def parse_trees_kept() -> Iterator[None]:
    """While open, moto's parser reuses the parse tree of a definition it has parsed before."""
    with mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(_parse)):
        yield
