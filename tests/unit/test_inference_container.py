"""The container's pieces that need no socket: the `serve` settings and command line, the image's
pins against the project's, the request parsing, and faults seen through Flask's test client."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from containers.inference import server as server_module
from containers.inference.serve import ServeSettings, gunicorn_argv, server_environment
from containers.inference.server import create_app
from pipelines import train
from pipelines.churn_data import CHURN_SCHEMA
from pipelines.train import TrainConfig
from trained_model.features import FeatureError
from trained_model.prediction import RequestError, parse_records

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)")


def test_settings_default_to_sagemakers_contract() -> None:
    settings = ServeSettings.from_environ({})
    assert (settings.host, settings.port, settings.timeout_s) == ("0.0.0.0", 8080, 60)
    assert settings.workers >= 1


def test_sagemaker_variables_reach_the_gunicorn_command_line() -> None:
    environ = {
        "SAGEMAKER_BIND_TO_PORT": "9090",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "20",
        "INFERENCE_BIND_HOST": "127.0.0.1",
        "INFERENCE_WORKER_THREADS": "4",
    }
    argv = gunicorn_argv(ServeSettings.from_environ(environ))
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    for option in ("--bind=127.0.0.1:9090", "--workers=3", "--timeout=20", "--threads=4", "--preload"):
        assert option in argv
    assert argv[-1] == "containers.inference.server:create_app()"


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_a_bad_worker_count_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="SAGEMAKER_MODEL_SERVER_WORKERS must be a positive integer"):
        ServeSettings.from_environ({"SAGEMAKER_MODEL_SERVER_WORKERS": value})


def test_server_environment_pins_math_threads_unless_set_and_reports_the_workers() -> None:
    settings = ServeSettings.from_environ({"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    env = server_environment({"OMP_NUM_THREADS": "4", "PATH": "/bin"}, settings)
    assert env["OMP_NUM_THREADS"] == "4"
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    assert env["SAGEMAKER_MODEL_SERVER_WORKERS"] == "2"
    assert env["PATH"] == "/bin"


def _pins(lines: list[str]) -> dict[str, str]:
    return {m[1].lower(): m[2] for line in lines if (m := PIN.match(line.strip()))}


def test_the_image_installs_exactly_the_projects_serving_pins_and_locked_versions() -> None:
    image = _pins((ROOT / "containers/inference/requirements.txt").read_text().splitlines())
    serving = _pins(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serving"]
    )
    locked = _pins((ROOT / "requirements.lock").read_text().splitlines())
    assert serving.items() <= image.items()
    assert {name: locked.get(name) for name in image} == image


def test_the_serve_script_is_executable_and_the_dockerfile_runs_it() -> None:
    script = ROOT / "containers/inference/serve"
    assert script.stat().st_mode & 0o111
    dockerfile = (ROOT / "containers/inference/Dockerfile").read_text()
    assert 'CMD ["serve"]' in dockerfile
    assert "EXPOSE 8080" in dockerfile


@pytest.mark.parametrize(
    ("body", "content_type", "rows"),
    [
        (b"[3, 80.5, 4, 1, 2, 12, 2.1, 0]", "application/json", 1),
        (b"[[3, 80.5, 4, 1, 2, 12, 2.1, 0], [3, 80.5, 4, 1, 2, 12, 2.1, 0]]", "application/json", 2),
        (b'{"instances": [[3, 80.5, 4, 1, 2, 12, 2.1, 0]]}', "application/json", 1),
        (b"3,80.5,4,1,2,12,2.1,0\r\n3,80.5,4,1,2,12,2.1,0\r\n", "text/csv", 2),
    ],
)
def test_request_bodies_become_schema_rows(body: bytes, content_type: str, rows: int) -> None:
    matrix = parse_records(body, content_type, "utf-8", CHURN_SCHEMA)
    np.testing.assert_array_equal(matrix, np.tile([3, 80.5, 4, 1, 2, 12, 2.1, 0], (rows, 1)))


def test_parsing_errors_carry_status_and_code() -> None:
    with pytest.raises(RequestError) as caught:
        parse_records(b"x", "text/plain", "utf-8", CHURN_SCHEMA)
    assert (caught.value.status, caught.value.code) == (415, "unsupported_media_type")
    with pytest.raises(RequestError) as caught:
        parse_records(b"1", "text/csv", "no-such-charset", CHURN_SCHEMA)
    assert (caught.value.status, caught.value.code) == (400, "bad_encoding")
    with pytest.raises(FeatureError) as feature_error:
        parse_records(b'{"tenure_months": 3}', "application/json", "utf-8", CHURN_SCHEMA)
    assert (feature_error.value.kind, feature_error.value.feature) == ("missing_feature", "monthly_charges")


def test_a_fault_in_the_model_is_a_json_500_without_internals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    train.train(TrainConfig(samples=300), tmp_path)
    app = create_app(tmp_path)

    def broken_predict(*_: object) -> dict[str, object]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(server_module, "predict", broken_predict)
    response = app.test_client().post("/invocations", data="3,80.5,4,1,2,12,2.1,0", content_type="text/csv")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal_error",
        "message": "the server failed to handle the request",
    }
    assert "secret internals" in caplog.text  # in the log, for the operator


def test_a_corrupt_model_file_keeps_the_server_up_and_unhealthy(tmp_path: Path) -> None:
    train.train(TrainConfig(samples=300), tmp_path)
    (tmp_path / "model.joblib").write_bytes(b"not a pickle")
    client = create_app(tmp_path).test_client()
    response = client.get("/ping")
    assert response.status_code == 503
    assert response.get_json()["error"] == "model_not_loaded"
