"""The model directory training writes and serving loads: its three files, and loading them."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]  # no stubs
import sklearn  # type: ignore[import-untyped]  # no stubs

from trained_model.features import FeatureSchema

MODEL_FILE = "model.joblib"
SCHEMA_FILE = "features.json"
METADATA_FILE = "metadata.json"

# The inference server's logger: this warning is the server's to tell when it loads a model.
logger = logging.getLogger("containers.inference")


@dataclass(frozen=True, slots=True)
class LoadedModel:
    model: Any
    schema: FeatureSchema
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.metadata.get("model_version", "unknown"))


def load_model(model_dir: Path) -> LoadedModel:
    """The model, its schema and metadata; FileNotFoundError while the directory is incomplete."""
    missing = [name for name in (MODEL_FILE, SCHEMA_FILE, METADATA_FILE) if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir} lacks {', '.join(missing)}")
    schema = FeatureSchema.load(model_dir / SCHEMA_FILE)
    metadata = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    trained_with = metadata.get("framework", {}).get("scikit-learn")
    if trained_with != sklearn.__version__:
        # Pickles are only guaranteed to load in the version that wrote them: say so loudly.
        logger.warning(
            "model trained with scikit-learn %s, serving with %s", trained_with, sklearn.__version__
        )
    return LoadedModel(joblib.load(model_dir / MODEL_FILE), schema, metadata)
