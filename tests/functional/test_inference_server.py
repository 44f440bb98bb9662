"""The inference container as SageMaker sees it: the `serve` entrypoint (gunicorn, 2 workers) on a
loopback port, a really trained model, real HTTP."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]  # no stubs
import numpy as np
import pytest

from containers.inference.local_server import LOOPBACK, LocalServer, ServerNotReadyError
from pipelines import churn_data, train
from pipelines.churn_data import CHURN_SCHEMA
from pipelines.train import TrainConfig
from trained_model.features import Matrix

JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
RECORDS = 12


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    train.train(TrainConfig("logistic", seed=5, samples=1500, model_version="test-v1"), directory)
    return directory


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with LocalServer(model_dir, workers=2, log_path=log) as running:
        yield running


@pytest.fixture(scope="module")
def rows() -> Matrix:
    """Valid records unseen in training, as schema-ordered rows."""
    return churn_data.synthetic_churn(RECORDS, seed=99).features


def _as_dicts(rows: Matrix) -> list[dict[str, float]]:
    return [dict(zip(CHURN_SCHEMA.names, map(float, row), strict=True)) for row in rows]


def _as_lists(rows: Matrix) -> list[list[float]]:
    return [[float(v) for v in row] for row in rows]


def _as_csv(rows: Matrix) -> bytes:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()


def _post(server: LocalServer, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    status, raw = server.request("POST", "/invocations", body, headers)
    return status, json.loads(raw)


def _expected(model_dir: Path, rows: Matrix) -> tuple[list[int], Matrix]:
    model = joblib.load(model_dir / "model.joblib")
    return model.predict(rows).tolist(), model.predict_proba(rows)


def test_ping_is_healthy_and_names_the_model_version(server: LocalServer) -> None:
    status, body = server.request("GET", "/ping")
    assert status == 200
    assert json.loads(body) == {"status": "healthy", "model_version": "test-v1"}


@pytest.mark.parametrize(
    ("form", "count"),
    [
        ("json_single_object", 1),
        ("json_single_array", 1),
        ("json_instances_of_objects", RECORDS),
        ("json_instances_of_arrays", RECORDS),
        ("json_bare_array_of_objects", RECORDS),
        ("csv_single", 1),
        ("csv_batch", RECORDS),
    ],
)
def test_every_input_form_predicts_what_the_model_predicts_in_process(
    server: LocalServer, model_dir: Path, rows: Matrix, form: str, count: int
) -> None:
    subset = rows[:count]
    bodies: dict[str, tuple[object, dict[str, str]]] = {
        "json_single_object": (_as_dicts(subset)[0], JSON),
        "json_single_array": (_as_lists(subset)[0], JSON),
        "json_instances_of_objects": ({"instances": _as_dicts(subset)}, JSON),
        "json_instances_of_arrays": ({"instances": _as_lists(subset)}, JSON),
        "json_bare_array_of_objects": (_as_dicts(subset), JSON),
        "csv_single": (None, CSV),
        "csv_batch": (None, CSV),
    }
    document, headers = bodies[form]
    body = _as_csv(subset) if document is None else json.dumps(document).encode()
    status, answer = _post(server, body, headers)
    labels, probabilities = _expected(model_dir, subset)
    assert status == 200, answer
    assert answer["model_version"] == "test-v1"
    assert answer["classes"] == [0, 1]
    assert answer["predictions"] == labels
    np.testing.assert_allclose(np.asarray(answer["probabilities"]), probabilities, rtol=1e-12)


def test_dict_records_are_matched_by_name_not_by_order(server: LocalServer, rows: Matrix) -> None:
    record = _as_dicts(rows[:1])[0]
    shuffled = dict(reversed(list(record.items())))
    assert _post(server, json.dumps(record).encode(), JSON) == _post(
        server, json.dumps(shuffled).encode(), JSON
    )


def test_twenty_batch_requests_in_a_row_all_succeed(server: LocalServer, rows: Matrix) -> None:
    body = _as_csv(rows)
    statuses = [server.request("POST", "/invocations", body, CSV)[0] for _ in range(20)]
    assert statuses == [200] * 20


VALID = "3,80.5,4,1,2,12.0,2.1,0"


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b'{"instances": [', JSON, (400, "malformed_json", None, None)),
        (b"", JSON, (400, "empty_body", None, None)),
        (b"  \n", CSV, (400, "empty_body", None, None)),
        (b'{"instances": []}', JSON, (400, "no_records", None, None)),
        (b'{"instances": {"a": 1}}', JSON, (400, "bad_request", None, None)),
        (b'"text"', JSON, (400, "bad_request", None, None)),
        (b"\xff\xfe", JSON, (400, "bad_encoding", None, None)),
        (b'3,"80.5,4\n', CSV, (400, "malformed_csv", None, None)),
        (VALID.encode(), {"Content-Type": "text/plain"}, (415, "unsupported_media_type", None, None)),
        (VALID.encode(), {}, (415, "unsupported_media_type", None, None)),
        (VALID.encode(), {**CSV, "Accept": "text/csv"}, (406, "not_acceptable", None, None)),
        (f"{VALID}\n3,80.5,4,1,2,12.0,2.1\n".encode(), CSV, (422, "wrong_feature_count", 1, "autopay")),
        (f"{VALID},7\n".encode(), CSV, (422, "wrong_feature_count", 0, None)),
        (b"[1, 2, 3]", JSON, (422, "wrong_feature_count", 0, "contract_months")),
        (
            f"{VALID}\n3,80.5,four,1,2,12.0,2.1,0\n".encode(),
            CSV,
            (422, "not_a_number", 1, "support_calls_90d"),
        ),
        (b"[3, 80.5, 4, 1, 2, NaN, 2.1, 0]", JSON, (422, "not_finite", 0, "data_usage_gb")),
        (b"3,80.5,4,1,2,12.0,9,0", CSV, (422, "out_of_range", 0, "satisfaction_score")),
    ],
)
def test_bad_requests_get_a_json_4xx_naming_what_is_wrong(
    server: LocalServer,
    body: bytes,
    headers: dict[str, str],
    expected: tuple[int, str, int | None, str | None],
) -> None:
    """``expected``: the status, the error code, and the record and feature the body names."""
    status, answer = _post(server, body, headers)
    assert (status, answer["error"], answer.get("record"), answer.get("feature")) == expected, answer
    assert answer["message"]


SECRET = 987654.125


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (f"3,80.5,4,1,2,12.0,{SECRET},0".encode(), CSV, "out_of_range"),
        (b"3,80.5,4,1,2,12.0,tok-SECRET-tok,0", CSV, "not_a_number"),
        (json.dumps([3, 80.5, 4.5, 1, 2, 12.0, 2.1, 0]).encode(), JSON, "not_an_integer"),
        (json.dumps([3, 80.5, 4, 1, 2, 12.0, "tok-SECRET-tok", 0]).encode(), JSON, "not_a_number"),
        (json.dumps([3, 80.5, 4, 1, 2, 12.0, SECRET, 0]).encode(), JSON, "out_of_range"),
        (b"[3, 80.5, 4, 1, 2, 12.0, -Infinity, 0]", JSON, "not_finite"),
    ],
)
def test_a_422_names_the_record_and_feature_but_never_echoes_the_value(
    server: LocalServer, body: bytes, headers: dict[str, str], code: str
) -> None:
    status, raw = server.request("POST", "/invocations", body, headers)
    answer = json.loads(raw)
    assert (status, answer["error"], answer["record"], answer["feature"]) == (422, code, 0, answer["feature"])
    assert answer["feature"] in churn_data.CHURN_SCHEMA.names
    for echoed in ("secret", "987654", "4.5", "inf"):
        assert echoed not in answer["message"].lower(), answer["message"]


def test_unknown_and_missing_features_are_named(server: LocalServer, rows: Matrix) -> None:
    good = _as_dicts(rows[:2])
    unknown = {"instances": [good[0], {**good[1], "shoe_size": 43}]}
    missing = {"instances": [{k: v for k, v in good[0].items() if k != "autopay"}]}
    assert _post(server, json.dumps(unknown).encode(), JSON)[1] | {"message": ""} == {
        "error": "unknown_feature",
        "message": "",
        "record": 1,
        "feature": "shoe_size",
    }
    status, answer = _post(server, json.dumps(missing).encode(), JSON)
    assert (status, answer["error"], answer["record"], answer["feature"]) == (
        422,
        "missing_feature",
        0,
        "autopay",
    )


def test_a_body_over_sagemakers_6_mib_limit_is_refused_with_413(server: LocalServer) -> None:
    line = (VALID + "\n").encode()
    body = line * (6 * 1024 * 1024 // len(line) + 1)
    assert len(body) > 6 * 1024 * 1024
    status, answer = _post(server, body, CSV)
    assert (status, answer["error"]) == (413, "payload_too_large")
    # The refusal left the server healthy and the connection pool usable.
    assert server.request("GET", "/ping")[0] == 200


def test_a_body_just_under_the_limit_is_served(server: LocalServer) -> None:
    line = (VALID + "\n").encode()
    body = line * (2 * 1024 * 1024 // len(line))
    status, answer = _post(server, body, CSV)
    assert status == 200
    assert len(answer["predictions"]) == body.count(b"\n")


def _post_chunked(
    server: LocalServer, line: bytes, lines_per_chunk: int, chunks: int
) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
    try:
        body = (line * lines_per_chunk for _ in range(chunks))
        connection.request("POST", "/invocations", body=body, headers=CSV, encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_chunked_body_is_read_whole_below_the_limit_and_refused_above_it(server: LocalServer) -> None:
    line = (VALID + "\n").encode()
    status, answer = _post_chunked(server, line, lines_per_chunk=1000, chunks=5)
    assert (status, len(answer["predictions"])) == (200, 5000)
    # Never truncated at the limit and served in part: refused whole.
    status, answer = _post_chunked(server, line, lines_per_chunk=10_000, chunks=40)
    assert (status, answer["error"]) == (413, "payload_too_large")


def test_wrong_methods_and_paths_get_json_errors(server: LocalServer) -> None:
    status, body = server.request("GET", "/invocations")
    assert (status, json.loads(body)["error"]) == (405, "method_not_allowed")
    status, body = server.request("GET", "/predict")
    assert (status, json.loads(body)["error"]) == (404, "not_found")


def test_execution_parameters_report_the_workers_and_the_payload_limit(server: LocalServer) -> None:
    status, body = server.request("GET", "/execution-parameters")
    assert status == 200
    assert json.loads(body) == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def _process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ping_is_503_until_the_model_arrives_and_stopping_leaves_no_process(
    model_dir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "model"
    empty.mkdir()
    server = LocalServer(empty, workers=2, log_path=tmp_path / "server.log")
    try:
        server.start(expect_healthy=False)
        status, body = server.request("GET", "/ping")
        assert (status, json.loads(body)["error"]) == (503, "model_not_loaded")
        status, body = server.request("POST", "/invocations", VALID.encode(), CSV)
        assert (status, json.loads(body)["error"]) == (503, "model_not_loaded")
        # The model lands (as SageMaker's download would finish): the weights file last, atomically.
        for name in ("features.json", "metadata.json"):
            shutil.copy(model_dir / name, empty / name)
        shutil.copy(model_dir / "model.joblib", tmp_path / "model.joblib.part")
        (tmp_path / "model.joblib.part").rename(empty / "model.joblib")
        assert server.wait_until_answering(timeout_s=15, expect_healthy=True) == 200
        assert server.request("POST", "/invocations", VALID.encode(), CSV)[0] == 200
    finally:
        pgid = server.pid
        server.stop()
    deadline = time.monotonic() + 5
    while _process_group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _process_group_alive(pgid), "gunicorn or a worker outlived stop()"


def test_a_bad_setting_makes_serve_exit_instead_of_serving(model_dir: Path, tmp_path: Path) -> None:
    server = LocalServer(
        model_dir, extra_env={"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, log_path=tmp_path / "log"
    )
    try:
        with pytest.raises(ServerNotReadyError, match="exited early"):
            server.start(ready_timeout_s=20)
    finally:
        server.stop()
    assert "SAGEMAKER_MODEL_SERVER_WORKERS must be a positive integer" in (tmp_path / "log").read_text()
