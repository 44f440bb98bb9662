"""The training image's files, without Docker: the pins against the lock, and that the image copies
every project module and installs every package the three steps import."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipelines.data_version import CODE_FILES

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "containers" / "training"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)")
STEPS = ("pipelines.preprocess", "pipelines.train", "pipelines.evaluate")
# Imported here when installed, done without when not: the image need not have them.
OPTIONAL = {
    "charset-normalizer": "numpy.f2py tries it for Fortran sources' encodings",
    "setuptools": "its _distutils_hack is a .pth hook of this virtual environment",
    "mlrollout": "the project itself, copied as files",
    "rich": "scikit-learn's progress callbacks import it when it is installed (for the mlrollout command)",
}

# What importing the three steps loads: project files (relative paths) and third-party distributions.
_IMPORTS = f"""
import importlib.metadata, json, sys
from pathlib import Path
for step in {STEPS!r}:
    __import__(step)
root = Path({str(ROOT)!r})
project, distributions = set(), set()
owners = importlib.metadata.packages_distributions()
for name, module in list(sys.modules.items()):
    top = name.split(".")[0]
    path = Path(getattr(module, "__file__", None) or "/").resolve()
    if root in path.parents and ".venv" not in path.parts:
        project.add(path.relative_to(root).as_posix())
    elif top not in sys.stdlib_module_names and top in owners:
        distributions.update(owners[top])
print(json.dumps({{"project": sorted(project), "distributions": sorted(distributions)}}))
"""


def _pins(lines: list[str]) -> dict[str, str]:
    return {canonicalize_name(m[1]): m[2] for line in lines if (m := PIN.match(line.strip()))}


def _closure(names: Iterable[str]) -> set[str]:
    """The distributions pip installs for these: each with its (non-extra) requirements, recursively."""
    seen: set[str] = set()
    todo = [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def _loaded() -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS], check=True, capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    loaded: dict[str, list[str]] = json.loads(done.stdout)
    return loaded


def _copied_sources() -> list[str]:
    sources = []
    for line in (IMAGE / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources += line.split()[1:-1]
    return sources


def _covered(path: str, sources: list[str]) -> bool:
    return any(path == source or (source.endswith("/") and path.startswith(source)) for source in sources)


def test_the_image_pins_are_the_locked_versions_and_the_serving_pins() -> None:
    image = _pins((IMAGE / "requirements.txt").read_text().splitlines())
    locked = _pins((ROOT / "requirements.lock").read_text().splitlines())
    serving = _pins(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serving"]
    )
    assert {name: locked.get(name) for name in image} == image
    assert {name: serving[name] for name in ("scikit-learn", "numpy", "flask")}.items() <= image.items()


def test_the_image_installs_every_package_and_copies_every_module_the_steps_import() -> None:
    loaded = _loaded()
    image = _pins((IMAGE / "requirements.txt").read_text().splitlines())
    imported = {canonicalize_name(name) for name in loaded["distributions"]} - set(OPTIONAL)
    assert sorted(imported - set(image)) == []
    assert sorted(_closure(imported) - set(image)) == []  # pip would add them, unpinned
    sources = _copied_sources()
    allowed = [
        line[1:] for line in (IMAGE / "Dockerfile.dockerignore").read_text().splitlines() if line[:1] == "!"
    ]
    needed = [*loaded["project"], "pyproject.toml", "containers/training/train"]
    # Every file the code version hashes (pipelines.data_version.CODE_FILES), imported or not.
    needed += [
        path.relative_to(ROOT).as_posix() for pattern in CODE_FILES for path in sorted(ROOT.glob(pattern))
    ]
    assert [path for path in needed if not _covered(path, sources)] == []
    assert [path for path in needed if not _covered(path, allowed)] == []


def test_the_train_program_runs_the_training_module_and_is_the_images_command() -> None:
    program = IMAGE / "train"
    assert program.stat().st_mode & 0o111
    assert 'exec python3 -m pipelines.train "$@"' in program.read_text()
    dockerfile = (IMAGE / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert 'PATH="/opt/program/containers/training:${PATH}"' in dockerfile
    assert 'CMD ["train"]' in dockerfile
