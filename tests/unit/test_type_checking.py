"""mypy reads only the aws_cdk modules the code imports (pyproject.toml says why): one imported but not
listed would be Any, and its misuse would pass unnoticed."""

from __future__ import annotations

import ast
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_cdk_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names if alias.name.split(".")[0] == "aws_cdk"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "aws_cdk":
            modules.add(node.module)
            if node.module == "aws_cdk":
                # `from aws_cdk import aws_iam` imports a module; `from aws_cdk import Stack` a class.
                modules |= {f"aws_cdk.{alias.name}" for alias in node.names if alias.name.islower()}
    return modules


def modules_mypy_reads() -> set[str]:
    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    return {
        module
        for override in overrides
        if override.get("follow_imports") == "normal"
        for module in override["module"]
    }


def test_every_aws_cdk_module_the_code_imports_is_type_checked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    imported = set().union(*(imported_cdk_modules((ROOT / path).read_text()) for path in tracked))
    assert "aws_cdk.aws_iam" in imported  # the scan sees the code
    assert imported - modules_mypy_reads() == set(), "add them to pyproject.toml's follow_imports = normal"


def test_the_scan_finds_module_imports_but_not_classes() -> None:
    source = "from aws_cdk import Stack, aws_sqs\nimport aws_cdk.aws_ec2\nfrom aws_cdk.aws_sns import Topic"
    modules = {"aws_cdk", "aws_cdk.aws_sqs", "aws_cdk.aws_ec2", "aws_cdk.aws_sns"}
    assert imported_cdk_modules(source) == modules
