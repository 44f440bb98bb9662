"""The local cloud: moto on loopback with the gaps filled and a synthesized app's stacks deployed into it.

How it opens and what it sets: README.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, TypeVar

import boto3
from moto import mock_aws

from localcloud.account import AwsEnvironment
from localcloud.awslambda.clock import AcceleratedClock, accelerated_workers
from localcloud.awslambda.invocations import route_lambda_invocations
from localcloud.awslambda.runner import LambdaRunner
from localcloud.cloudformation.deploy import deploy_stacks
from localcloud.cloudformation.models import DefinitionTransform, DeployedStack, merged_stack
from localcloud.cloudformation.ordering import dependents, stack_order
from localcloud.cloudformation.template import (
    Resolver,
    StackTemplate,
    load_stacks,
    local_resolver,
    merged_template,
)
from localcloud.cloudwatch.responses import emulate_alarm_apis
from localcloud.events.delivery import schedules_match_no_event
from localcloud.iam.enforcement import RoleCredentials, admit_emulator_credentials, enforced_iam
from localcloud.moto_costs import moto_costs_kept
from localcloud.sagemaker.control import EndpointUpdates, emulate_update_endpoint
from localcloud.server import moto_server
from localcloud.stepfunctions.execution_events import emit_execution_events

DEFAULT_STACK = "MlRollout-dev"
LOOPBACK = "127.0.0.1"
# Credentials for the emulator only: they never leave this machine.
EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Variables that would send calls elsewhere than the emulator, unset while the cloud is open.
UNSET_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
SERVICE_ENDPOINT_PREFIX = "AWS_ENDPOINT_URL_"

GapFiller = Callable[["LocalCloud"], AbstractContextManager[Any]]
_Value = TypeVar("_Value")


class LocalCloudError(RuntimeError):
    """The local cloud cannot start as asked, or is used while closed: the message says why."""


@contextmanager
def patched_environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Sets (or, for None, unsets) variables of this process; restores exactly what was there on exit."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def quiet_request_log() -> Iterator[None]:
    """The server's per-request lines (werkzeug's INFO log) are left out while open; warnings stay."""
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


class LocalCloud:
    """moto on loopback with the gap fillers, the Lambda runner and the stacks of `cdk_out` deployed.

    `stack_name`: the stack to deploy, after the stacks it depends on (as `cdk deploy <stack>` does);
    None deploys every stack of the assembly. `templates` (known before opening) and `stacks` (while
    open) list them in deployment order; `template`, `resolver` and `stack` are the named stack's.

    `clock`: the Lambda workers' accelerated clock (functions get its variable, workers start through
    the clock worker). `definition_transform`: rewrites state machine definitions before they are
    created (e.g. Wait states shortened by the clock's rate). `gap_fillers`: named factories opened in
    order before deploying. `require_appconfig=False` skips the AppConfig resources moto cannot create
    when `localcloud.appconfig.routing` is not among the gap fillers. `parameters`: values of template
    parameters, given to every stack that declares one of that name (an SSM-typed parameter not given
    is read from the cloud's Parameter Store when deploying). `lambda_log`: where the functions' logs
    are echoed (standard error when None). `enforce_iam`: once the stacks are deployed, every call to
    moto is authenticated and authorized (`localcloud.iam`): each function runs with a session of its
    own execution role, the emulator's own calls (its fixed credentials) as a role allowed everything.
    """

    def __init__(
        self,
        cdk_out: Path,
        stack_name: str | None = DEFAULT_STACK,
        *,
        clock: AcceleratedClock | None = None,
        definition_transform: DefinitionTransform | None = None,
        gap_fillers: Mapping[str, GapFiller] | None = None,
        require_appconfig: bool = True,
        parameters: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        lambda_log: TextIO | None = None,
        enforce_iam: bool = False,
    ) -> None:
        self.cdk_out = Path(cdk_out)
        self.stack_name = stack_name
        self.clock = clock
        self.definition_transform = definition_transform
        self.gap_fillers: dict[str, GapFiller] = dict(gap_fillers or {})
        self.require_appconfig = require_appconfig
        self.parameters = dict(parameters or {})
        self.region = region
        self.lambda_log = lambda_log
        self.enforce_iam = enforce_iam
        self._exit_stack: ExitStack | None = None
        self._filled: dict[str, Any] = {}
        self._port: int | None = None
        self._runner: LambdaRunner | None = None
        self._updates: EndpointUpdates | None = None
        self._stacks: dict[str, DeployedStack] | None = None
        self.templates: Mapping[str, StackTemplate] = self._load_templates()

    # --- what a test uses -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._open(self._port, "port")

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def runner(self) -> LambdaRunner:
        return self._open(self._runner, "runner")

    @property
    def endpoint_updates(self) -> EndpointUpdates:
        """What the emulated UpdateEndpoint received; name endpoints in `silently_roll_back` to have
        SageMaker keep their old config."""
        return self._open(self._updates, "endpoint_updates")

    @property
    def stacks(self) -> Mapping[str, DeployedStack]:
        """Every deployed stack by name, in deployment order."""
        return self._open(self._stacks, "stacks")

    @property
    def stack(self) -> DeployedStack:
        """The stack named `stack_name` with the stacks deployed around it, seen as one."""
        return merged_stack(self._named("stack"), list(self.stacks.values()))

    def stack_of(self, name: str) -> DeployedStack:
        """The deployed stack `name` with the stacks that depend on it (an environment's stack and its
        families'), seen as one: in a cloud of several environments, one environment's."""
        if name not in self.templates:
            raise LocalCloudError(f"this cloud deploys no stack {name!r}; it deploys {list(self.templates)}")
        members = [name, *dependents(self.templates, name)]
        return merged_stack(name, [self.stacks[member] for member in members])

    def template_of(self, name: str) -> StackTemplate:
        """The template of `name` and the stacks that depend on it, as one (before the cloud opens too)."""
        if name not in self.templates:
            raise LocalCloudError(f"this cloud deploys no stack {name!r}; it deploys {list(self.templates)}")
        members = [name, *dependents(self.templates, name)]
        return merged_template(name, [self.templates[member] for member in members])

    def resolver_of(self, name: str) -> Resolver:
        """The resolver of `template_of(name)` as the deployment starts."""
        return self._resolver(self.template_of(name))

    @property
    def template(self) -> StackTemplate:
        """The template of the stack named `stack_name` and the stacks deployed around it, as one."""
        name = self._named("template")
        return merged_template(
            name, [self.templates[name], *(t for n, t in self.templates.items() if n != name)]
        )

    @property
    def resolver(self) -> Resolver:
        """The resolver of `template` as the deployment starts: local names, the given `parameters`."""
        return self._resolver(self.template)

    def gap_filler(self, name: str) -> Any:
        """What the gap filler named `name` yielded when it was opened."""
        if name not in self._filled:
            raise LocalCloudError(f"no open gap filler named {name!r}; open: {sorted(self._filled)}")
        return self._filled[name]

    def client(self, service: str) -> Any:
        """A boto3 client of the emulator (the same as `boto3.client(service)` while the cloud is open)."""
        session: Any = boto3.Session(region_name=self.region)
        return session.client(service, endpoint_url=self.endpoint_url)

    # --- opening and closing --------------------------------------------------------------------------

    def __enter__(self) -> LocalCloud:
        if self._exit_stack is not None:
            raise LocalCloudError("this LocalCloud is already open")
        with ExitStack() as stack:
            stack.callback(self._forget)
            stack.enter_context(patched_environment(self._base_environment()))
            stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
            stack.enter_context(quiet_request_log())
            server = moto_server(LOOPBACK)
            server.start()
            stack.callback(server.stop)
            _, self._port = server.get_host_and_port()
            stack.enter_context(
                patched_environment({"AWS_ENDPOINT_URL": self.endpoint_url, "MOTO_PORT": str(self._port)})
            )
            if self.enforce_iam:
                # mock_aws put its own fake keys in the environment: the emulator's are the ones admitted.
                stack.enter_context(patched_environment(EMULATOR_CREDENTIALS))
                admit_emulator_credentials(self.client("iam"), EMULATOR_CREDENTIALS, region=self.region)
            if self.clock is not None:
                stack.enter_context(accelerated_workers())
            self._runner = stack.enter_context(
                LambdaRunner(
                    [],
                    aws_endpoint_url=self.endpoint_url,
                    log_sink=self.lambda_log,
                    credentials=RoleCredentials(region=self.region) if self.enforce_iam else None,
                )
            )
            stack.enter_context(route_lambda_invocations(self._runner))
            stack.enter_context(schedules_match_no_event())
            stack.enter_context(emit_execution_events())
            stack.enter_context(moto_costs_kept())
            # On the workers' clock, a blue/green update shifts and bakes as its guardrails say.
            guardrail_clock = self.clock.now if self.clock is not None else None
            self._updates = stack.enter_context(emulate_update_endpoint(clock=guardrail_clock))
            stack.enter_context(emulate_alarm_apis())
            for name, factory in self.gap_fillers.items():
                self._filled[name] = stack.enter_context(factory(self))
            self._stacks = deploy_stacks(
                self.templates,
                runner=self._runner,
                environment=AwsEnvironment(region=self.region),
                parameters=self.parameters,
                session=boto3.Session(region_name=self.region),
                endpoint_url=self.endpoint_url,
                function_transform=self.clock.on if self.clock is not None else None,
                definition_transform=self.definition_transform,
                require_appconfig=self.require_appconfig,
            )
            if self.enforce_iam:
                stack.enter_context(enforced_iam())
            self._exit_stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        exit_stack, self._exit_stack = self._exit_stack, None
        if exit_stack is not None:
            exit_stack.close()

    # --- internals ------------------------------------------------------------------------------------

    def _load_templates(self) -> dict[str, StackTemplate]:
        if not (self.cdk_out / "manifest.json").is_file():
            raise LocalCloudError(
                f"{self.cdk_out} is not a cloud assembly (no manifest.json): synthesize first"
            )
        stacks = load_stacks(self.cdk_out)
        if self.stack_name is not None and self.stack_name not in stacks:
            raise LocalCloudError(f"{self.cdk_out} has no stack {self.stack_name!r}; it has {sorted(stacks)}")
        # A dependency cycle between stacks is refused here (`DependencyCycleError`), before opening.
        # The named stack comes with the stacks it depends on and the ones that depend on it (an
        # environment's stack with its families' stacks): the app around it, as `cdk deploy --all` has it.
        named = None if self.stack_name is None else [self.stack_name, *dependents(stacks, self.stack_name)]
        order = stack_order(stacks, named)
        return {name: stacks[name] for name in order}

    def _resolver(self, template: StackTemplate) -> Resolver:
        return local_resolver(template, AwsEnvironment(region=self.region), parameters=self.parameters)

    def _named(self, what: str) -> str:
        if self.stack_name is None:
            raise LocalCloudError(
                f"LocalCloud.{what} is the named stack's, and this cloud deploys every stack: "
                f"use `templates` or `stacks` ({list(self.templates)})"
            )
        return self.stack_name

    def _base_environment(self) -> dict[str, str | None]:
        environment: dict[str, str | None] = {**EMULATOR_CREDENTIALS, "AWS_DEFAULT_REGION": self.region}
        for name in UNSET_VARIABLES:
            environment[name] = None
        for name in os.environ:
            if name.startswith(SERVICE_ENDPOINT_PREFIX):
                environment[name] = None
        return environment

    def _forget(self) -> None:
        self._filled.clear()
        self._port = self._runner = self._updates = self._stacks = None

    def _open(self, value: _Value | None, what: str) -> _Value:
        if value is None:
            raise LocalCloudError(f"LocalCloud.{what} is only available while the cloud is open")
        return value
