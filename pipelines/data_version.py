"""What data and what code a model was made from: the data manifest, its version, the code version.

A retraining trains on every object under the family's prefix of the training-data bucket. The data
version names exactly that content, so that a model package says which data made it and two runs on
the same data say so:

* the **manifest** lists every file under the data root: its key (the path relative to the root, with
  ``/`` separators), the sha256 of its bytes and its size, sorted by key;
* the **data version** is the sha256 of the lines ``"<key>\\t<sha256>\\n"`` in key order: the same
  content under the same keys is the same version wherever and whenever it is read; a changed, added,
  removed or renamed object is a new one. Sizes are listed for people, not hashed (the digest covers
  the bytes already).

As JSON (``manifest.json`` beside the preprocessed training data, ``data-manifest.json`` beside the
model)::

    {"objects": [{"key": "2026-11-25/part-0.csv", "sha256": "<hex>", "bytes": 1234}, ...],
     "data_version": "<hex>"}

Reading one back checks it: keys unique and sorted, digests well formed, and the data version the one
its objects give, so a manifest edited by hand is refused rather than believed.

The **code version** is ``"<mlrollout version>+<12 hex>"``: the package version (``pyproject.toml``
beside the ``pipelines`` package when present, as in the source tree and the training image, else the
installed distribution's) and the start of a sha256 over the training and evaluation code
(``pipelines/*.py``, ``trained_model/*.py`` and ``lambdas/gates/*.py``, whose models the gate files
are checked with): for each file in path order, ``"<path>\\0<sha256 of its bytes>\\n"``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MANIFEST_FILE = "manifest.json"
PACKAGE = "mlrollout"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
CODE_DIGEST_LENGTH = 12
# The project root: the folder holding the ``pipelines`` package (the repository, or /opt/program in
# the training image).
SOURCE_ROOT = Path(__file__).resolve().parent.parent
CODE_FILES = ("pipelines/*.py", "trained_model/*.py", "lambdas/gates/*.py")
_CHUNK = 1 << 20


class DataVersionError(ValueError):
    """The data (or a manifest of it) cannot be versioned; the message names the file or field."""


class ManifestObject(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, description="path relative to the data root, '/'-separated")
    sha256: str
    bytes: int = Field(ge=0)

    @field_validator("key")
    @classmethod
    def _relative_key(cls, key: str) -> str:
        parts = key.split("/")
        if key.startswith("/") or any(part in {"", ".", ".."} for part in parts):
            raise ValueError(f"key {key!r} must be a relative path without empty, '.' or '..' parts")
        return key

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, digest: str) -> str:
        if not SHA256_HEX.match(digest):
            raise ValueError(f"sha256 must be 64 lower-case hex digits, got {digest!r}")
        return digest


class DataManifest(BaseModel):
    """The files of a data root, in key order, and the data version they give."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objects: tuple[ManifestObject, ...] = Field(min_length=1)
    data_version: str

    @model_validator(mode="after")
    def _consistent(self) -> DataManifest:
        keys = [entry.key for entry in self.objects]
        if keys != sorted(keys) or len(set(keys)) != len(keys):
            raise ValueError("objects must be sorted by key, each key once")
        expected = data_version(self.objects)
        if self.data_version != expected:
            raise ValueError(
                f"data_version {self.data_version!r} is not the one its objects give ({expected})"
            )
        return self

    @classmethod
    def of(cls, objects: Iterable[ManifestObject]) -> DataManifest:
        """The manifest of these objects (sorted here), with its data version computed."""
        ordered = tuple(sorted(objects, key=lambda entry: entry.key))
        try:
            return cls(objects=ordered, data_version=data_version(ordered))
        except ValidationError as error:
            raise DataVersionError(f"not a data manifest: {_first_error(error)}") from None

    @property
    def total_bytes(self) -> int:
        return sum(entry.bytes for entry in self.objects)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "manifest") -> DataManifest:
        """A manifest read back and checked; DataVersionError naming ``source`` and the fault if not."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            raise DataVersionError(f"{source}: not a valid data manifest: {_first_error(error)}") from None

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> DataManifest:
        try:
            text = path.read_bytes()
        except OSError as error:
            raise DataVersionError(f"{path}: cannot read the data manifest: {error.strerror}") from None
        return cls.from_json(text, str(path))


def data_version(objects: Iterable[ManifestObject]) -> str:
    """sha256 of ``"<key>\\t<sha256>\\n"`` for each object, in key order."""
    digest = hashlib.sha256()
    for entry in sorted(objects, key=lambda entry: entry.key):
        digest.update(f"{entry.key}\t{entry.sha256}\n".encode())
    return digest.hexdigest()


def manifest_of_dir(root: Path) -> DataManifest:
    """The manifest of every file under ``root`` (recursively; keys relative to it).

    Raises DataVersionError when ``root`` is not a directory, holds no file, or a file cannot be read.
    """
    if not root.is_dir():
        raise DataVersionError(f"{root}: the data directory does not exist or is not a directory")
    try:
        paths = sorted(path for path in root.rglob("*") if not path.is_dir())
    except OSError as error:
        raise DataVersionError(f"{root}: cannot list the data directory: {error.strerror}") from None
    if not paths:
        raise DataVersionError(f"{root}: no data files (an empty drop, or the wrong prefix)")
    return DataManifest.of(_manifest_object(path, path.relative_to(root).as_posix()) for path in paths)


def _manifest_object(path: Path, key: str) -> ManifestObject:
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as error:
        raise DataVersionError(f"{key}: cannot read the data file: {error.strerror or error}") from None
    try:
        return ManifestObject(key=key, sha256=digest.hexdigest(), bytes=size)
    except ValidationError as error:
        raise DataVersionError(f"{key}: {_first_error(error)}") from None


def code_version(root: Path = SOURCE_ROOT) -> str:
    """``"<package version>+<first 12 hex of the code digest>"``, the same for the same code."""
    return f"{package_version(root)}+{code_digest(root)[:CODE_DIGEST_LENGTH]}"


def code_digest(root: Path = SOURCE_ROOT, patterns: Sequence[str] = CODE_FILES) -> str:
    """sha256 over ``"<path>\\0<sha256 of the file>\\n"`` for the code files, in path order."""
    files = sorted({path.relative_to(root).as_posix() for pattern in patterns for path in root.glob(pattern)})
    if not files:
        raise DataVersionError(f"{root}: none of the code files {list(patterns)} are there")
    digest = hashlib.sha256()
    for name in files:
        digest.update(f"{name}\0{hashlib.sha256((root / name).read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def package_version(root: Path = SOURCE_ROOT) -> str:
    """The project's version: ``pyproject.toml`` at ``root`` when there, else the installed package's."""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            project: Any = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except tomllib.TOMLDecodeError as error:
            raise DataVersionError(f"{pyproject}: not readable TOML: {error}") from None
        if isinstance(project, dict) and isinstance(project.get("version"), str):
            return str(project["version"])
        raise DataVersionError(f"{pyproject}: no [project] version")
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise DataVersionError(
            f"no {PACKAGE} version: neither {pyproject} nor an installed {PACKAGE} package"
        ) from None


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])
