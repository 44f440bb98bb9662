"""The infra tier: one synthesized app per environment for the whole run (jsii start-up and cdk-nag cost
seconds), shared by every tier and every test worker."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from filelock import FileLock

from infra.application import build_app
from infra.config import EnvironmentConfig, load_config
from infra.nag import render
from infra.platform_parameters import parameter_name

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass(frozen=True)
class Synthesized:
    config: EnvironmentConfig
    template: Template
    outdir: Path

    @cached_property
    def _template_text(self) -> str:
        # `Template.to_json()` brings the whole app's template from the jsii kernel: a quarter of a
        # CPU-second of node's per call, and the tests read the template hundreds of times.
        return json.dumps(self.template.to_json())

    def template_json(self) -> dict[str, Any]:
        """The template, a copy of its own for each call (a test may change what it gets)."""
        template: dict[str, Any] = json.loads(self._template_text)
        return template

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.template_json()["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def platform_value(self, what: str) -> dict[str, str]:
        """How a family stack refers to the platform's bucket name, key ARN or topic ARN: the SSM-typed
        template parameter that reads what the platform stack wrote (infra/platform_parameters.py)."""
        [parameter] = [
            key
            for key, declared in self.template_json()["Parameters"].items()
            if declared.get("Default") == parameter_name(self.config.prefix, what)
        ]
        return {"Ref": parameter}

    def parameters(self, substitutions: dict[str, str] | None = None) -> TemplateParameters:
        """The template's SSM parameters as the functions read them (tokens rendered, then substituted)."""
        values: dict[str, str] = {}
        for resource in self.of_type("AWS::SSM::Parameter").values():
            value = render(resource["Properties"]["Value"])
            for token, replacement in (substitutions or {}).items():
                value = value.replace(token, replacement)
            values[resource["Properties"]["Name"]] = value
        return TemplateParameters(values)

    def settings_documents(self, path: str) -> dict[str, dict[str, Any]]:
        """name -> JSON document of each parameter under ``path`` (tokens rendered as <LogicalId.Attr>)."""
        parameters = self.parameters().values
        return {
            name.removeprefix(path): json.loads(value)
            for name, value in parameters.items()
            if name.startswith(path)
        }


@dataclass(frozen=True)
class TemplateParameters:
    """Answers SSM GetParametersByPath from a synthesized template: what a deployed function would read."""

    values: dict[str, str]

    def get_parameters_by_path(self, **request: Any) -> dict[str, Any]:
        path = str(request["Path"]).rstrip("/") + "/"
        return {
            "Parameters": [
                {"Name": name, "Value": value}
                for name, value in sorted(self.values.items())
                if name.startswith(path) and "/" not in name.removeprefix(path)
            ]
        }


REPO_ROOT = Path(__file__).resolve().parents[2]


def cdk_json_context() -> dict[str, Any]:
    """The feature flags of cdk.json: the CLI passes them to app.py, a test must do the same."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


def synthesize(tmp_root: Path, env: str = "dev", config_dir: Path | None = None) -> Synthesized:
    outdir = tmp_root / f"cdk.out-{env}"
    app = App(outdir=str(outdir), context={**cdk_json_context(), "env": env})
    build_app(app, config_dir=config_dir) if config_dir else build_app(app)
    app.synth()  # runs cdk-nag: an unacknowledged finding fails here
    config = load_config(env, config_dir) if config_dir else load_config(env)
    return Synthesized(config=config, template=Template.from_json(merged_templates(outdir)), outdir=outdir)


_SHARED: dict[str, Path] = {}


def shared_outdir(tmp_path_factory: pytest.TempPathFactory, env: str = "dev") -> Path:
    """The environment's `cdk.out`, synthesized once per run and read by every test that deploys or inspects
    it (tests must not write into it). Test workers share it through the run's common temporary folder."""
    if env not in _SHARED:
        base = tmp_path_factory.getbasetemp()
        root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        with FileLock(str(root / f"shared-synth-{env}.lock")):
            outdir = root / f"shared-synth-{env}" / f"cdk.out-{env}"
            if not (outdir / "manifest.json").exists():
                synthesize(outdir.parent, env)
        _SHARED[env] = outdir
    return _SHARED[env]


def merged_templates(outdir: Path) -> dict[str, Any]:
    """Every stack of the app (the environment's and each family's) as one template for assertions: the
    stacks' logical ids are distinct (a family's constructs keep the ids they had in one stack)."""
    merged: dict[str, Any] = {"Resources": {}, "Parameters": {}, "Outputs": {}}
    for path in sorted(outdir.glob("*.template.json")):
        body = json.loads(path.read_text())
        for section, entries in merged.items():
            clash = set(entries) & set(body.get(section, {}))
            assert section == "Parameters" or not clash, f"{path.name}: {section} {sorted(clash)} repeat"
            entries.update(body.get(section, {}))
    return merged


def shared_synthesized(tmp_path_factory: pytest.TempPathFactory, env: str = "dev") -> Synthesized:
    outdir = shared_outdir(tmp_path_factory, env)
    template = merged_templates(outdir)
    return Synthesized(config=load_config(env), template=Template.from_json(template), outdir=outdir)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return shared_synthesized(tmp_path_factory)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/infra/" in str(item.path):
            item.add_marker(pytest.mark.infra)
