"""The data manifest and version (what a model was trained on) and the code version (what trained it)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from pipelines import data_version
from pipelines.data_version import (
    DataManifest,
    DataVersionError,
    ManifestObject,
    code_digest,
    code_version,
    manifest_of_dir,
    package_version,
)

ROOT = Path(__file__).resolve().parents[2]


def _drops(root: Path, files: dict[str, bytes]) -> Path:
    for key, body in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return root


DROPS = {"2026-11-25/part-0.csv": b"a,b\n1,2\n", "2026-11-24/part-0.csv": b"a,b\n3,4\n", "z.csv": b""}


def test_the_manifest_lists_every_file_by_key_with_its_digest_and_size(tmp_path: Path) -> None:
    manifest = manifest_of_dir(_drops(tmp_path, DROPS))
    assert [entry.key for entry in manifest.objects] == sorted(DROPS)
    for entry in manifest.objects:
        assert entry.sha256 == hashlib.sha256(DROPS[entry.key]).hexdigest()
        assert entry.bytes == len(DROPS[entry.key])
    assert manifest.total_bytes == sum(len(body) for body in DROPS.values())


def test_the_data_version_is_the_sha256_of_key_tab_digest_lines_in_key_order(tmp_path: Path) -> None:
    manifest = manifest_of_dir(_drops(tmp_path, DROPS))
    lines = "".join(f"{key}\t{hashlib.sha256(DROPS[key]).hexdigest()}\n" for key in sorted(DROPS))
    assert manifest.data_version == hashlib.sha256(lines.encode()).hexdigest()


def test_same_content_under_the_same_keys_is_the_same_version_wherever_it_is(tmp_path: Path) -> None:
    first = manifest_of_dir(_drops(tmp_path / "one", DROPS))
    second = manifest_of_dir(_drops(tmp_path / "two", dict(reversed(DROPS.items()))))
    assert first == second


@pytest.mark.parametrize(
    "change",
    [
        {"2026-11-25/part-0.csv": b"a,b\n1,3\n"},  # a changed object
        {"2026-11-26/part-0.csv": b"a,b\n5,6\n"},  # a new drop
    ],
)
def test_a_changed_or_added_object_is_a_new_version(tmp_path: Path, change: dict[str, bytes]) -> None:
    before = manifest_of_dir(_drops(tmp_path / "before", DROPS))
    after = manifest_of_dir(_drops(tmp_path / "after", {**DROPS, **change}))
    assert after.data_version != before.data_version


def test_a_renamed_or_removed_object_is_a_new_version(tmp_path: Path) -> None:
    before = manifest_of_dir(_drops(tmp_path / "before", DROPS))
    renamed = {("y.csv" if key == "z.csv" else key): body for key, body in DROPS.items()}
    removed = {key: body for key, body in DROPS.items() if key != "z.csv"}
    assert manifest_of_dir(_drops(tmp_path / "renamed", renamed)).data_version != before.data_version
    assert manifest_of_dir(_drops(tmp_path / "removed", removed)).data_version != before.data_version


def test_the_manifest_round_trips_through_json(tmp_path: Path) -> None:
    manifest = manifest_of_dir(_drops(tmp_path / "data", DROPS))
    document = json.loads(manifest.to_json())
    assert set(document) == {"objects", "data_version"}
    assert document["objects"][0] == {
        "key": "2026-11-24/part-0.csv",
        "sha256": hashlib.sha256(DROPS["2026-11-24/part-0.csv"]).hexdigest(),
        "bytes": len(DROPS["2026-11-24/part-0.csv"]),
    }
    assert DataManifest.from_json(manifest.to_json()) == manifest
    assert DataManifest.read(manifest.write(tmp_path / "out" / "manifest.json")) == manifest


def _tampered(manifest: DataManifest, **changes: object) -> str:
    document = json.loads(manifest.to_json())
    document.update(changes)
    return json.dumps(document)


def test_a_manifest_that_does_not_add_up_is_refused_naming_the_fault(tmp_path: Path) -> None:
    manifest = manifest_of_dir(_drops(tmp_path, DROPS))
    objects = json.loads(manifest.to_json())["objects"]
    cases = {
        "is not the one its objects give": _tampered(manifest, data_version="0" * 64),
        "sorted by key": _tampered(manifest, objects=list(reversed(objects))),
        "each key once": _tampered(manifest, objects=[objects[0], objects[0]]),
        "64 lower-case hex": _tampered(manifest, objects=[{**objects[0], "sha256": "ABC"}]),
        "relative path": _tampered(manifest, objects=[{**objects[0], "key": "../escape.csv"}]),
        "Extra inputs": _tampered(manifest, extra=1),
        "at least 1 item": _tampered(manifest, objects=[]),
    }
    for message, text in cases.items():
        with pytest.raises(DataVersionError, match=re.escape(message)):
            DataManifest.from_json(text, "s3://bucket/manifest.json")
    with pytest.raises(DataVersionError, match=r"s3://bucket/manifest\.json: not a valid data manifest"):
        DataManifest.from_json("{", "s3://bucket/manifest.json")


def test_of_sorts_the_objects_and_computes_the_version() -> None:
    entries = [ManifestObject(key=key, sha256="a" * 64, bytes=1) for key in ("b.csv", "a.csv")]
    manifest = DataManifest.of(entries)
    assert [entry.key for entry in manifest.objects] == ["a.csv", "b.csv"]
    assert manifest.data_version == data_version.data_version(entries)


def test_an_empty_or_missing_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataVersionError, match="no data files"):
        manifest_of_dir(tmp_path / "empty")
    with pytest.raises(DataVersionError, match="does not exist or is not a directory"):
        manifest_of_dir(tmp_path / "absent")


def test_an_unreadable_data_file_is_named(tmp_path: Path) -> None:
    _drops(tmp_path, {"ok.csv": b"a\n"})
    (tmp_path / "gone.csv").symlink_to(tmp_path / "nowhere.csv")  # listed, but cannot be read
    with pytest.raises(DataVersionError, match=r"gone\.csv: cannot read the data file"):
        manifest_of_dir(tmp_path)


def test_the_code_version_is_the_package_version_and_a_digest_of_the_pipeline_code() -> None:
    version = code_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+\+[0-9a-f]{12}", version)
    assert version.startswith(f"{package_version()}+")
    assert version == code_version()


def _source_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "src"
    for package in ("pipelines", "trained_model", "lambdas/gates"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_the_code_version_changes_with_the_training_or_gate_code_only(tmp_path: Path) -> None:
    copy = _source_copy(tmp_path)
    assert code_version(copy) == code_version()
    (copy / "README.md").write_text("not code\n")
    assert code_version(copy) == code_version()
    before = code_digest(copy)
    with (copy / "lambdas" / "gates" / "drift.py").open("a") as gates:
        gates.write("\n# a change\n")
    assert code_digest(copy) != before
    after_gates = code_digest(copy)
    (copy / "pipelines" / "new_step.py").write_text("STEP = 1\n")
    assert code_digest(copy) != after_gates
    after_step = code_digest(copy)
    with (copy / "trained_model" / "features.py").open("a") as features:
        features.write("\n# a change\n")
    assert code_digest(copy) != after_step


def test_the_package_version_is_read_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mlrollout"\nversion = "9.8.7"\n')
    assert package_version(tmp_path) == "9.8.7"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mlrollout"\n')
    with pytest.raises(DataVersionError, match="no \\[project\\] version"):
        package_version(tmp_path)


def test_a_tree_without_the_code_files_has_no_code_digest(tmp_path: Path) -> None:
    with pytest.raises(DataVersionError, match="none of the code files"):
        code_digest(tmp_path)
