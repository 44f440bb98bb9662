"""moto's AppConfig store: the applications, configuration profiles and hosted versions read here."""

from __future__ import annotations

from moto.appconfig.models import AppConfigBackend, Application, ConfigurationProfile, appconfig_backends

from localcloud.appconfig.exceptions import (
    ResourceNotFound,
)
from localcloud.appconfig.models import (
    Scope,
)


def backend_of(scope: Scope) -> AppConfigBackend:
    return appconfig_backends[scope.account_id][scope.region]


def application_of(scope: Scope, application_id: str) -> Application:
    applications = backend_of(scope).applications
    if application_id not in applications:
        raise ResourceNotFound(f"Application {application_id} not found", resource_name=application_id)
    return applications[application_id]


def profile_of(scope: Scope, application_id: str, profile_id: str) -> ConfigurationProfile:
    profiles = application_of(scope, application_id).config_profiles
    if profile_id not in profiles:
        raise ResourceNotFound(
            f"Configuration profile {profile_id} of application {application_id} not found",
            resource_name=profile_id,
        )
    return profiles[profile_id]


def find_application(scope: Scope, identifier: str) -> Application:
    for application in backend_of(scope).applications.values():
        if identifier in {application.id, application.name}:
            return application
    raise ResourceNotFound(f"Application {identifier!r} not found", resource_type="Application")


def find_profile(application: Application, identifier: str) -> ConfigurationProfile:
    for profile in application.config_profiles.values():
        if identifier in {profile.id, profile.name}:
            return profile
    raise ResourceNotFound(
        f"Configuration profile {identifier!r} of application {application.id} not found",
        resource_type="ConfigurationProfile",
    )


def content_bytes(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode()
