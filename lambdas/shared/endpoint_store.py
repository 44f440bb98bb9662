"""Each endpoint's settings, read from SSM Parameter Store, where the endpoint's stack writes them.

One String parameter per endpoint, ``<path><endpoint>``, holding a JSON document (the rollout's
``RolloutEndpoint`` shape; every function validates the fields its own model names). The functions'
environment names only the path, so it stays the same size however many endpoints an environment has.

Read with GetParametersByPath on first use and again after ``max_age_seconds``; a failed refresh keeps
the last good copy. An endpoint whose document is not valid JSON or fails its model is kept out of the
catalog with its problem: asking for it raises ``EndpointSettingsError`` naming the parameter and the
problem, and every other endpoint goes on working.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

import boto3
from pydantic import BaseModel, ValidationError

from lambdas.shared.aws_clients import CLIENT_CONFIG
from lambdas.shared.settings import SettingsError
from lambdas.shared.validation import describe_problems

__all__ = [
    "ENDPOINT_SETTINGS_PATH_VARIABLE",
    "FAMILY_SETTINGS_PATH_VARIABLE",
    "EndpointSettingsError",
    "ReadsParameters",
    "SettingsCatalog",
    "endpoint_settings_path",
    "family_settings_path",
]

ENDPOINT_SETTINGS_PATH_VARIABLE = "ENDPOINT_SETTINGS_PATH"
# A changed endpoint stack reaches warm containers within this long.
DEFAULT_MAX_AGE_SECONDS = 60.0

EndpointT = TypeVar("EndpointT", bound=BaseModel)


def endpoint_settings_path(prefix: str) -> str:
    """The parameter path of an environment's endpoints (``prefix`` is e.g. ``mlrollout-dev``)."""
    return f"/{prefix}/endpoints/"


FAMILY_SETTINGS_PATH_VARIABLE = "FAMILY_SETTINGS_PATH"


def family_settings_path(prefix: str) -> str:
    """The parameter path of an environment's model families (what retraining needs of each)."""
    return f"/{prefix}/families/"


class EndpointSettingsError(SettingsError):
    """One endpoint's stored settings cannot be used; the other endpoints are unaffected."""

    def __init__(self, endpoint: str, message: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class ReadsParameters(Protocol):
    """SSM GetParametersByPath (boto3's `ssm` client has it)."""

    def get_parameters_by_path(self, **request: Any) -> Any: ...


class SettingsCatalog(Mapping[str, EndpointT], Generic[EndpointT]):
    """The valid documents under a path by name (an environment's endpoints, or its model families),
    each validated by ``model`` (fields it does not name are ignored)."""

    def __init__(
        self,
        model: type[EndpointT],
        path: str,
        *,
        client: ReadsParameters | None = None,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not path.startswith("/") or not path.endswith("/"):
            raise SettingsError(
                f"{ENDPOINT_SETTINGS_PATH_VARIABLE} must start and end with '/', got {path!r}"
            )
        self._model = model
        self.path = path
        self._client = client
        self._max_age = max_age_seconds
        self._clock = clock
        self._read_at: float | None = None
        self._valid: dict[str, EndpointT] = {}
        self._problems: dict[str, str] = {}

    # --- Mapping ------------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> EndpointT:
        self._refresh()
        if name in self._problems:
            raise EndpointSettingsError(name, self._problems[name])
        return self._valid[name]

    def __iter__(self) -> Iterator[str]:
        self._refresh()
        return iter(sorted(self._valid))

    def __len__(self) -> int:
        self._refresh()
        return len(self._valid)

    @property
    def problems(self) -> Mapping[str, str]:
        """Endpoints whose stored settings cannot be used, each with its problem."""
        self._refresh()
        return dict(self._problems)

    def __repr__(self) -> str:
        return f"SettingsCatalog({self._model.__name__}, {self.path!r})"

    # --- reading ------------------------------------------------------------------------------------

    def _refresh(self) -> None:
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self._max_age:
            return
        try:
            documents = self._read()
        except Exception as error:
            if self._read_at is None:
                problem = f"{type(error).__name__}: {error}"
                raise SettingsError(
                    f"the endpoints' settings under {self.path} cannot be read: {problem}"
                ) from error
            return  # keep the last good copy; the next call tries again
        valid: dict[str, EndpointT] = {}
        problems: dict[str, str] = {}
        for name, text in documents.items():
            try:
                valid[name] = self._parse(name, text)
            except EndpointSettingsError as error:
                problems[name] = str(error)
        self._valid, self._problems, self._read_at = valid, problems, now

    def _read(self) -> dict[str, str]:
        client = self._client
        if client is None:
            client = self._client = boto3.client("ssm", config=CLIENT_CONFIG)
        documents: dict[str, str] = {}
        request: dict[str, Any] = {"Path": self.path.rstrip("/"), "Recursive": False}
        while True:
            page = client.get_parameters_by_path(**request)
            for parameter in page.get("Parameters", []):
                documents[str(parameter["Name"]).rsplit("/", 1)[-1]] = str(parameter["Value"])
            token = page.get("NextToken")
            if not token:
                return documents
            request["NextToken"] = token

    def _parse(self, name: str, text: str) -> EndpointT:
        where = f"{self.path}{name}"
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise EndpointSettingsError(name, f"{where} is not valid JSON: {error}") from None
        if not isinstance(document, dict):
            raise EndpointSettingsError(
                name, f"{where} must hold a JSON object, got {type(document).__name__}"
            )
        try:
            return self._model.model_validate(_own_fields(self._model, document))
        except ValidationError as error:
            raise EndpointSettingsError(
                name, f"{where} is invalid: {describe_problems(error, top_level='(document)')}"
            ) from None


def keep_catalog(value: Any, handler: Callable[[Any], Any]) -> Any:
    """A pydantic wrap validator: a catalog passes as it is (it validates each endpoint when read);
    anything else (a dict in tests and ``ENDPOINTS`` documents) is validated by the field's type."""
    if isinstance(value, SettingsCatalog):
        return value
    return handler(value)


def endpoints_from_environment(environ: Mapping[str, str], model: type[EndpointT]) -> dict[str, Any]:
    """The ``endpoints`` field's raw value: the catalog under ``ENDPOINT_SETTINGS_PATH`` (as deployed), or
    the inline ``ENDPOINTS`` JSON document (a function run on its own, e.g. in a test); empty if neither."""
    path = environ.get(ENDPOINT_SETTINGS_PATH_VARIABLE)
    if path is not None:
        return {"endpoints": SettingsCatalog(model, path)}
    if "ENDPOINTS" in environ:
        try:
            inline = json.loads(environ["ENDPOINTS"])
        except json.JSONDecodeError as error:
            raise SettingsError(f"ENDPOINTS is not valid JSON: {error}") from None
        if isinstance(inline, dict):
            # As from the store: each function reads the fields its model names (the document is shared).
            inline = {name: _own_fields(model, document) for name, document in inline.items()}
        return {"endpoints": inline}
    return {}


def _own_fields(model: type[BaseModel], document: Any) -> Any:
    if not isinstance(document, dict):
        return document
    return {key: value for key, value in document.items() if key in model.model_fields}


def endpoints_variable(environ: Mapping[str, str], inline: str = "ENDPOINTS") -> str:
    """The variable the endpoints come from (``inline`` names the JSON one), for naming a problem."""
    return (
        inline
        if ENDPOINT_SETTINGS_PATH_VARIABLE not in environ and inline in environ
        else (ENDPOINT_SETTINGS_PATH_VARIABLE)
    )
