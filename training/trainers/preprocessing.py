"""Tabular preprocessing, target encoding and train/validation splits (numpy + pandas; no torch).

The preprocessing is fitted on the training split only and recorded as plain JSON in the model card, so
serving can rebuild it without unpickling anything:

- numeric: missing -> the training mean, then standardized (x - mean) / std; a constant column gets
  std 1 (as scikit-learn's SimpleImputer(mean) + StandardScaler do, so the scikit-learn baselines and
  the MLP see the same numbers);
- categorical and boolean: one-hot over the `max_categories` most frequent training values (ties by
  value); a missing, empty or unseen value is all zeros;
- text, datetime and image columns are dropped (listed in the model card with the reason).

(The random-forest baselines record numeric columns as "impute_mean": imputed, not scaled.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.trainers.base import TrainerError, TrainingData

TABULAR_TYPES = ("numeric", "categorical", "boolean")
DROP_REASONS = {
    "text": "text columns are not used by tabular trainers (use text_classification)",
    "datetime": "datetime columns are not used by tabular trainers (derive numeric features in a recipe)",
    "image": "image columns are not used by tabular trainers (use image_classification)",
}
MAX_CLASSES = 1000
SPLIT_VALIDATION_VALUES = frozenset({"val", "valid", "validation", "test", "testing"})
SPLIT_TRAIN_VALUES = frozenset({"train", "training"})


def category_key(value) -> str | None:
    """Return the string a categorical value is one-hot encoded by; None for a missing value.

    1, 1.0 and "1" are the same category (a Parquet int column with nulls is read back as floats).
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    text = str(value)
    return text or None


def category_keys(series: pd.Series) -> np.ndarray:
    return np.array([category_key(value) for value in series.tolist()], dtype=object)


def python_value(value):
    """Return a numpy scalar as the plain Python value JSON can hold."""
    return value.item() if isinstance(value, np.generic) else value


def read_table(data: TrainingData, columns: list[str]) -> pd.DataFrame:
    path = Path(data.parquet_path)
    if not path.is_file():
        raise TrainerError(f"the dataset file {path.name} is missing", code="invalid_data")
    frame = pd.read_parquet(path, columns=columns)
    if frame.empty:
        raise TrainerError("the dataset has no rows", code="invalid_data")
    return frame


def tabular_columns(schema: dict[str, str], target: str | None) -> tuple[dict[str, str], list[dict]]:
    """Split a schema into the feature columns tabular trainers use and the dropped ones (with reasons)."""
    used, dropped = {}, []
    for name, kind in schema.items():
        if name == target:
            continue
        if kind in TABULAR_TYPES:
            used[name] = kind
        else:
            dropped.append({"name": name, "type": kind, "reason": DROP_REASONS.get(kind, "unsupported type")})
    return used, dropped


def require_tabular_features(schema: dict[str, str], target: str | None) -> list[str]:
    used, dropped = tabular_columns(schema, target)
    if not used:
        others = ", ".join(f"{column['name']} ({column['type']})" for column in dropped) or "none"
        raise TrainerError(
            "no usable feature columns: tabular trainers learn from numeric, categorical and boolean "
            f"columns other than the target; this dataset has: {others}",
            code="no_features",
            field="target",
        )
    return list(used)


@dataclass
class Targets:
    values: np.ndarray  # int64 class ids (classification) or float64 values (regression), one per kept row
    rows: np.ndarray  # indices of the rows that have a target
    labels: list | None  # class id -> original value


def encode_target(series: pd.Series, *, task: str, name: str) -> Targets:
    """Drop rows without a target, map classes to ids (sorted values), check there is something to learn."""
    if task == "regression":
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        rows = np.flatnonzero(np.isfinite(values))
        if len(rows) < 2:
            raise TrainerError(
                f"target {name!r} has {len(rows)} numeric values; at least 2 rows are needed",
                code="invalid_target",
                field="target",
            )
        return Targets(values=values[rows], rows=rows, labels=None)
    present = series.notna().to_numpy() & (series.astype(str).to_numpy() != "")
    rows = np.flatnonzero(present)
    kept = series.iloc[rows]
    labels = sorted({python_value(value) for value in kept.tolist()}, key=_label_order)
    if len(labels) < 2:
        found = f"only {labels[0]!r}" if labels else "no values"
        raise TrainerError(
            f"target {name!r} has {found}; classification needs at least 2 classes",
            code="invalid_target",
            field="target",
        )
    if len(labels) > MAX_CLASSES:
        raise TrainerError(
            f"target {name!r} has {len(labels):,} distinct values, more than {MAX_CLASSES:,} classes; "
            "for a numeric target use a regression trainer",
            code="invalid_target",
            field="target",
        )
    index = {label: number for number, label in enumerate(labels)}
    values = np.array([index[python_value(value)] for value in kept.tolist()], dtype=np.int64)
    return Targets(values=values, rows=rows, labels=labels)


def _label_order(value):
    return (0, value, "") if isinstance(value, int | float | bool) else (1, 0, str(value))


def split_rows(
    targets: np.ndarray,
    *,
    task: str,
    validation_fraction: float,
    seed: int,
    split_values: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Return (train positions, validation positions, how) into `targets`.

    A `split` column with both training and validation/test values wins ("column"); otherwise a
    seeded random split, stratified by class for classification ("random").
    """
    if split_values is not None:
        lowered = np.array([str(value).strip().lower() for value in split_values], dtype=object)
        train = np.flatnonzero(np.isin(lowered, list(SPLIT_TRAIN_VALUES)))
        validation = np.flatnonzero(np.isin(lowered, list(SPLIT_VALIDATION_VALUES)))
        if len(train) and len(validation):
            return train, validation, "column"
    count = len(targets)
    if count < 2:
        raise TrainerError(
            "at least 2 rows with a target are needed to train and validate", code="invalid_data"
        )
    rng = np.random.default_rng(seed)
    if task == "classification":
        validation_parts, train_parts = [], []
        for label in np.unique(targets):
            members = rng.permutation(np.flatnonzero(targets == label))
            take = min(int(round(len(members) * validation_fraction)), len(members) - 1)
            validation_parts.append(members[:take])
            train_parts.append(members[take:])
        validation = np.concatenate(validation_parts)
        train = np.concatenate(train_parts)
        if not len(validation):  # every class is tiny: lend one row of the largest class
            largest = max(train_parts, key=len)
            validation = largest[:1]
            train = np.setdiff1d(train, validation)
    else:
        order = rng.permutation(count)
        take = min(max(int(round(count * validation_fraction)), 1), count - 1)
        validation, train = order[:take], order[take:]
    return np.sort(train), np.sort(validation), "random"


class TabularPreprocessor:
    """Numeric standardization + one-hot encoding, fitted on training rows, stored as JSON (`spec`)."""

    def __init__(self, spec: dict):
        self.spec = spec

    @property
    def columns(self) -> list[dict]:
        return self.spec["columns"]

    @property
    def output_size(self) -> int:
        return self.spec["output_size"]

    @property
    def feature_names(self) -> list[str]:
        names = []
        for column in self.columns:
            if column["encoding"] != "one_hot":
                names.append(column["name"])
            else:
                names.extend(f"{column['name']}={category}" for category in column["categories"])
        return names

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: dict[str, str], *, max_categories: int) -> TabularPreprocessor:
        encoded, dropped = [], []
        for name, kind in columns.items():
            if kind == "numeric":
                values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
                observed = values[np.isfinite(values)]
                if not len(observed):
                    dropped.append({"name": name, "type": kind, "reason": "no values in the training split"})
                    continue
                mean = float(observed.mean())
                # Missing values are imputed with the mean before scaling, so they add no variance but
                # count in n (scikit-learn's SimpleImputer + StandardScaler, which the baselines use).
                variance = float(((observed - mean) ** 2).sum() / len(values))
                encoded.append(
                    {
                        "name": name,
                        "type": kind,
                        "encoding": "standardize",
                        "mean": mean,
                        "std": _scale(variance, mean, len(values)),
                    }
                )
            else:
                keys = pd.Series(category_keys(frame[name]))
                counts = keys.dropna().value_counts()
                if counts.empty:
                    dropped.append({"name": name, "type": kind, "reason": "no values in the training split"})
                    continue
                ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:max_categories]
                encoded.append(
                    {
                        "name": name,
                        "type": kind,
                        "encoding": "one_hot",
                        "categories": [category for category, _ in ranked],
                        "other_values": int(len(counts) - len(ranked)),
                    }
                )
        if not encoded:
            raise TrainerError(
                "no usable feature columns: every feature column is empty in the training split",
                code="no_features",
            )
        width = sum(1 if column["encoding"] != "one_hot" else len(column["categories"]) for column in encoded)
        return cls({"columns": encoded, "dropped": dropped, "output_size": width})

    def transform(self, frame: pd.DataFrame | list[dict]) -> np.ndarray:
        """Return float32 features [rows, output_size]; a missing input column reads as all missing."""
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(list(frame))
        rows = len(frame)
        parts = []
        for column in self.columns:
            series = (
                frame[column["name"]] if column["name"] in frame else pd.Series([None] * rows, dtype=object)
            )
            if column["encoding"] in ("standardize", "impute_mean"):
                values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
                values = np.where(np.isfinite(values), values, column["mean"])
                if column["encoding"] == "standardize":
                    values = (values - column["mean"]) / column["std"]
                parts.append(values.reshape(-1, 1))
            else:
                categories = column["categories"]
                codes = pd.Categorical(category_keys(series), categories=categories).codes
                one_hot = np.zeros((rows, len(categories)), dtype=np.float64)
                known = codes >= 0
                one_hot[np.flatnonzero(known), codes[known]] = 1.0
                parts.append(one_hot)
        return np.hstack(parts).astype(np.float32) if parts else np.zeros((rows, 0), np.float32)


def _scale(variance: float, mean: float, count: int) -> float:
    # scikit-learn's test for a constant feature (StandardScaler then uses scale 1).
    eps = np.finfo(np.float64).eps
    if variance <= count * eps * variance + (count * mean * eps) ** 2:
        return 1.0
    return float(math.sqrt(variance))
