"""The emulated AppConfig and AppConfigData APIs, parsed and serialized by moto from the botocore models."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult, BaseResponse, EmptyResult

from localcloud.appconfig.backend import AppConfigEmulator
from localcloud.appconfig.exceptions import (
    AppConfigEmulationError,
)
from localcloud.appconfig.models import (
    Scope,
    monitor_of,
    required_name,
)


class EmulatedResponse(BaseResponse):
    """moto's response machinery (routing, parsing and serializing from the botocore model)."""

    emulator: AppConfigEmulator | None = None

    def __init__(self, service_name: str) -> None:
        super().__init__(service_name=service_name)
        self.automated_parameter_parsing = True

    @property
    def state(self) -> AppConfigEmulator:
        if self.emulator is None:
            raise AppConfigEmulationError("localcloud.appconfig.routing's emulation is not open")
        return self.emulator

    def _param(self, name: str) -> Any:
        return self._get_param(name)

    def _scope(self) -> Scope:
        return Scope(self.current_account, self.region)


class AppConfigControlResponse(EmulatedResponse):
    def __init__(self) -> None:
        super().__init__("appconfig")

    def create_environment(self) -> ActionResult:
        params = self._get_params()
        environment = self.state.create_environment(self._scope(), str(self._param("ApplicationId")), params)
        return ActionResult(environment.to_json())

    def get_environment(self) -> ActionResult:
        environment = self.state.environment(
            self._scope(), str(self._param("ApplicationId")), str(self._param("EnvironmentId"))
        )
        return ActionResult(environment.to_json())

    def list_environments(self) -> ActionResult:
        environments = self.state.environments(self._scope(), str(self._param("ApplicationId")))
        return ActionResult({"Items": [environment.to_json() for environment in environments]})

    def update_environment(self) -> ActionResult:
        environment = self.state.environment(
            self._scope(), str(self._param("ApplicationId")), str(self._param("EnvironmentId"))
        )
        if self._param("Name") is not None:
            environment.name = required_name(self._param("Name"), "Name")
        if self._param("Description") is not None:
            environment.description = str(self._param("Description"))
        if self._param("Monitors") is not None:
            environment.monitors = [monitor_of(item) for item in self._param("Monitors")]
        return ActionResult(environment.to_json())

    def create_deployment_strategy(self) -> ActionResult:
        return ActionResult(self.state.create_strategy(self._scope(), self._get_params()).to_json())

    def get_deployment_strategy(self) -> ActionResult:
        return ActionResult(
            self.state.strategy(self._scope(), str(self._param("DeploymentStrategyId"))).to_json()
        )

    def list_deployment_strategies(self) -> ActionResult:
        return ActionResult(
            {"Items": [strategy.to_json() for strategy in self.state.strategies(self._scope())]}
        )

    def update_deployment_strategy(self) -> ActionResult:
        strategy_id = str(self._param("DeploymentStrategyId"))
        return ActionResult(
            self.state.update_strategy(self._scope(), strategy_id, self._get_params()).to_json()
        )

    def start_deployment(self) -> ActionResult:
        deployment = self.state.start_deployment(
            self._scope(),
            str(self._param("ApplicationId")),
            str(self._param("EnvironmentId")),
            self._get_params(),
        )
        return ActionResult(deployment.to_json())

    def get_deployment(self) -> ActionResult:
        deployment = self.state.deployment(self._scope(), *self._deployment_address())
        return ActionResult(deployment.to_json())

    def list_deployments(self) -> ActionResult:
        self.state.tick()
        deployments = self.state.deployments(
            self._scope(), str(self._param("ApplicationId")), str(self._param("EnvironmentId"))
        )
        # AppConfig lists the newest deployment first.
        return ActionResult({"Items": [deployment.summary() for deployment in reversed(deployments)]})

    def stop_deployment(self) -> ActionResult:
        allow_revert = bool(self._param("AllowRevert"))
        deployment = self.state.stop_deployment(self._scope(), *self._deployment_address(), allow_revert)
        return ActionResult(deployment.to_json())

    def create_extension_association(self) -> ActionResult:
        return ActionResult(self.state.create_association(self._scope(), self._get_params()).to_json())

    def get_extension_association(self) -> ActionResult:
        association_id = str(self._param("ExtensionAssociationId"))
        return ActionResult(self.state.association(self._scope(), association_id).to_json())

    def list_extension_associations(self) -> ActionResult:
        resource = self._param("ResourceIdentifier")
        items = [
            {"Id": a.id, "ExtensionArn": a.extension_arn, "ResourceArn": a.resource_arn}
            for a in self.state.associations(self._scope())
            if resource is None or a.resource_arn == resource
        ]
        return ActionResult({"Items": items})

    def delete_extension_association(self) -> EmptyResult:
        self.state.delete_association(self._scope(), str(self._param("ExtensionAssociationId")))
        return EmptyResult()

    def _deployment_address(self) -> tuple[str, str, int]:
        return (
            str(self._param("ApplicationId")),
            str(self._param("EnvironmentId")),
            int(self._param("DeploymentNumber")),
        )


class AppConfigDataResponse(EmulatedResponse):
    def __init__(self) -> None:
        super().__init__("appconfigdata")

    def start_configuration_session(self) -> ActionResult:
        token = self.state.start_session(self._scope(), self._get_params())
        return ActionResult({"InitialConfigurationToken": token})

    def get_latest_configuration(self) -> ActionResult:
        return ActionResult(self.state.latest_configuration(str(self._param("ConfigurationToken") or "")))
