"""The release functions' services, built on a function's first call (never at import)."""

from __future__ import annotations

import os
from typing import cast

import boto3

from lambdas.release.settings import load_release_settings
from lambdas.release.workflow import CopiesObjects, RegistryControl, ReleaseServices
from lambdas.shared.aws_clients import CLIENT_CONFIG, PublishesNotifications
from lambdas.shared.container import ContainerServices

__all__ = ["services", "use"]


def _build() -> ReleaseServices:
    return ReleaseServices(
        settings=load_release_settings(os.environ),
        sagemaker=cast("RegistryControl", boto3.client("sagemaker", config=CLIENT_CONFIG)),
        s3=cast("CopiesObjects", boto3.client("s3", config=CLIENT_CONFIG)),
        sns=cast("PublishesNotifications", boto3.client("sns", config=CLIENT_CONFIG)),
    )


_container = ContainerServices(_build)
use = _container.use
services = _container.get
