"""Each endpoint's settings read from SSM: validated one by one, refreshed, kept when a refresh fails."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.flags import EndpointVariants, FlagError, FlagSet
from lambdas.rollout.settings import RolloutEndpoint, load_rollout_settings
from lambdas.serving.settings import EndpointSettings
from lambdas.shared.endpoint_store import EndpointSettingsError, SettingsCatalog
from lambdas.shared.settings import SettingsError

PATH = "/mlrollout-dev/endpoints/"
CHURN = {
    "endpoint_name": "mlrollout-dev-churn",
    "champion": "champion",
    "challenger": "challenger",
    "business_metric": {"namespace": "mlrollout/business", "name": "ConversionRate"},
    "model_package_group": "mlrollout-dev-churn",
    "execution_role_arn": "arn:aws:iam::123456789012:role/churn",
}


class Parameters:
    """GetParametersByPath over a dict, a page at a time; ``failing`` makes every call raise."""

    def __init__(self, values: dict[str, str], page_size: int = 1) -> None:
        self.values = values
        self.page_size = page_size
        self.calls = 0
        self.failing = False

    def get_parameters_by_path(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        if self.failing:
            raise ConnectionError("SSM unreachable")
        assert request["Path"] == PATH.rstrip("/") and request["Recursive"] is False
        names = sorted(self.values)
        start = int(request.get("NextToken", 0))
        page = names[start : start + self.page_size]
        answer: dict[str, Any] = {"Parameters": [{"Name": n, "Value": self.values[n]} for n in page]}
        if start + self.page_size < len(names):
            answer["NextToken"] = str(start + self.page_size)
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def catalog(parameters: Parameters, clock: Clock | None = None) -> SettingsCatalog[RolloutEndpoint]:
    return SettingsCatalog(RolloutEndpoint, PATH, client=parameters, clock=clock or Clock())


def test_every_page_is_read_and_each_function_reads_only_the_fields_of_its_model() -> None:
    values = {
        f"{PATH}{name}": json.dumps({**CHURN, "endpoint_name": f"e-{name}"}) for name in ("a", "b", "c")
    }
    endpoints = catalog(Parameters(values))
    assert list(endpoints) == ["a", "b", "c"]
    assert endpoints["b"].endpoint_name == "e-b"
    serving = SettingsCatalog(EndpointSettings, PATH, client=Parameters(values))
    assert serving["a"] == EndpointSettings.model_validate(
        {k: CHURN[k] for k in EndpointSettings.model_fields} | {"endpoint_name": "e-a"}
    )


def test_an_invalid_endpoint_fails_alone_naming_its_parameter_and_problem() -> None:
    values = {
        f"{PATH}churn": json.dumps(CHURN),
        f"{PATH}broken": json.dumps({**CHURN, "champion": ""}),
        f"{PATH}garbled": "{not json",
    }
    endpoints = catalog(Parameters(values))
    assert endpoints["churn"].endpoint_name == "mlrollout-dev-churn"
    assert list(endpoints) == ["churn"]
    with pytest.raises(EndpointSettingsError, match=rf"{PATH}broken is invalid: champion: "):
        endpoints["broken"]
    with pytest.raises(EndpointSettingsError, match=rf"{PATH}garbled is not valid JSON"):
        endpoints.get("garbled")
    assert set(endpoints.problems) == {"broken", "garbled"}
    with pytest.raises(KeyError):
        endpoints["unknown"]


def test_a_changed_parameter_is_read_after_the_maximum_age_and_not_before() -> None:
    parameters, clock = Parameters({f"{PATH}churn": json.dumps(CHURN)}), Clock()
    endpoints = catalog(parameters, clock)
    assert list(endpoints) == ["churn"]
    parameters.values[f"{PATH}fraud"] = json.dumps({**CHURN, "endpoint_name": "mlrollout-dev-fraud"})
    clock.now = 59.0
    assert list(endpoints) == ["churn"]
    clock.now = 61.0
    assert list(endpoints) == ["churn", "fraud"]


def test_a_failed_refresh_keeps_the_last_good_copy_and_a_failed_first_read_says_why() -> None:
    parameters, clock = Parameters({f"{PATH}churn": json.dumps(CHURN)}), Clock()
    endpoints = catalog(parameters, clock)
    assert "churn" in endpoints
    parameters.failing, clock.now = True, 120.0
    assert endpoints["churn"].endpoint_name == "mlrollout-dev-churn"
    with pytest.raises(SettingsError, match=rf"settings under {PATH} cannot be read: ConnectionError"):
        len(catalog(parameters))


def test_the_environment_names_only_the_path_and_nothing_is_read_until_asked() -> None:
    settings = load_rollout_settings(
        {
            "ENDPOINT_SETTINGS_PATH": PATH,
            "LOCK_TABLE": "locks",
            "LEDGER_TABLE": "ledger",
            "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:topic",
        }
    )
    assert isinstance(settings.endpoints, SettingsCatalog)
    assert settings.endpoints.path == PATH
    with pytest.raises(SettingsError, match="must start and end with '/'"):
        load_rollout_settings({"ENDPOINT_SETTINGS_PATH": "mlrollout", "LOCK_TABLE": "locks"})


def test_flags_of_an_endpoint_not_deployed_yet_are_left_out_and_a_deployed_one_needs_all_its_flags() -> None:
    churn = EndpointVariants(endpoint="churn", champion="champion", challenger="challenger")
    fraud = EndpointVariants(endpoint="fraud", champion="champion", challenger="challenger")
    values = FlagSet.initial([churn, fraud]).values()
    flags = FlagSet.from_values(values, [churn], partial=True)
    assert [f.endpoint.endpoint for f in flags.endpoints] == ["churn"]
    with pytest.raises(FlagError, match="unknown endpoint 'fraud'"):
        FlagSet.from_values(values, [churn])
    only_churn = FlagSet.initial([churn]).values()
    lagging = FlagSet.from_values(only_churn, [churn, fraud], partial=True)
    with pytest.raises(KeyError):
        lagging.for_endpoint("fraud")
    with pytest.raises(FlagError, match="unknown flag"):
        FlagSet.from_values({**only_churn, "nonsense": {"enabled": False}}, [churn], partial=True)
