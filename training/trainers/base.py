"""The contract between a built-in trainer and whoever drives it (the job runner, tests, the baseline bench).

A trainer is pure: no Django, no database. It reads a dataset version's Parquet file (and its files
directory for images), trains on `context.device`, and talks to the outside world only through the
`TrainerContext` it is given: metrics, debugger payloads, checkpoints, progress, and "should I stop?".

Importing this module (and the registry in `training.trainers`) does not import torch or scikit-learn,
so the web process can validate a job's trainer, target and hyperparameters before it is queued; the
heavy modules load inside `fit`.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

COLUMN_TYPES = ("numeric", "categorical", "boolean", "datetime", "text", "image")
HYPERPARAMETER_TYPES = ("int", "float", "str", "bool", "int_list")
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


class TrainerError(Exception):
    """Input a trainer cannot train on; the message names the field or column and says what would work."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


class TrainingDiverged(TrainerError):
    """The loss became NaN or infinite: training cannot recover, so the job stops."""

    def __init__(self, message: str, *, epoch: int, batch: int):
        super().__init__(message, code="training_diverged", field="lr")
        self.epoch = epoch
        self.batch = batch


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    type: str  # one of HYPERPARAMETER_TYPES
    default: Any
    min: float | None = None  # inclusive; for int_list it bounds every element
    max: float | None = None
    choices: tuple | None = None
    help: str = ""
    optional: bool = False  # None is a valid value (it means "off" or "automatic"; see help)
    max_length: int | None = None  # int_list only

    def __post_init__(self):
        if self.type not in HYPERPARAMETER_TYPES:
            raise ValueError(f"{self.name}: unknown hyperparameter type {self.type!r}")

    def describe(self) -> dict:
        """Return a JSON-ready description for forms and the API."""
        return {
            "name": self.name,
            "type": self.type,
            "default": list(self.default) if isinstance(self.default, tuple) else self.default,
            "min": self.min,
            "max": self.max,
            "choices": list(self.choices) if self.choices else None,
            "optional": self.optional,
            "help": self.help,
        }

    def coerce(self, value: Any) -> Any:
        """Return `value` as this hyperparameter's type, or raise TrainerError naming it.

        Strings are accepted where they spell a value ("10", "0.01", "true", "64,32"): form fields and
        environment variables arrive as strings.
        """
        if value is None or (isinstance(value, str) and not value.strip() and self.optional):
            if self.optional:
                return None
            raise self._error(value, "a value")
        if self.type == "int":
            result = self._int(value)
        elif self.type == "float":
            result = self._float(value)
        elif self.type == "bool":
            result = self._bool(value)
        elif self.type == "str":
            if not isinstance(value, str):
                raise self._error(value, "a string")
            result = value.strip()
        else:
            result = self._int_list(value)
        self._check_range(result)
        return result

    def _error(self, value: Any, expected: str) -> TrainerError:
        return TrainerError(
            f"{self.name}: expected {expected}, got {value!r}", code="invalid_hyperparameter", field=self.name
        )

    def _int(self, value: Any, expected: str = "an integer") -> int:
        if isinstance(value, bool):
            raise self._error(value, expected)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise self._error(value, expected)

    def _float(self, value: Any) -> float:
        if isinstance(value, bool):
            raise self._error(value, "a number")
        try:
            result = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise self._error(value, "a number") from None
        if not math.isfinite(result):
            raise self._error(value, "a finite number")
        return result

    def _bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise self._error(value, "true or false")

    def _int_list(self, value: Any) -> list[int]:
        expected = "a list of integers (e.g. [64, 32])"
        items = value
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    items = json.loads(text)
                except ValueError:
                    raise self._error(value, expected) from None
            else:
                items = [part for part in text.replace(" ", ",").split(",") if part]
        if not isinstance(items, list | tuple):
            raise self._error(value, expected)
        result = [self._int(item, expected) for item in items]
        if self.max_length is not None and len(result) > self.max_length:
            raise TrainerError(
                f"{self.name}: at most {self.max_length} values, got {len(result)}",
                code="invalid_hyperparameter",
                field=self.name,
            )
        return result

    def _check_range(self, value: Any) -> None:
        if self.choices is not None and value not in self.choices:
            options = ", ".join(repr(choice) for choice in self.choices)
            raise TrainerError(
                f"{self.name}: must be one of {options}, got {value!r}",
                code="invalid_hyperparameter",
                field=self.name,
            )
        for number in value if isinstance(value, list) else [value]:
            if not isinstance(number, int | float) or isinstance(number, bool):
                continue
            too_low = self.min is not None and number < self.min
            too_high = self.max is not None and number > self.max
            if too_low or too_high:
                if self.min is not None and self.max is not None:
                    bounds = f"between {self.min:g} and {self.max:g}"
                elif self.min is not None:
                    bounds = f"at least {self.min:g}"
                else:
                    bounds = f"at most {self.max:g}"
                raise TrainerError(
                    f"{self.name}: must be {bounds}, got {number!r}",
                    code="invalid_hyperparameter",
                    field=self.name,
                )


@dataclass
class TrainingData:
    parquet_path: Path
    schema: dict[str, str]
    files_dir: Path | None = None  # image datasets: the `image` column holds paths relative to it


@runtime_checkable
class TrainerContext(Protocol):
    """What a trainer may ask of its runner.

    Steps are epochs, counted from 1; one-shot fits (scikit-learn) log once, at step 1. Per epoch the
    torch trainers log metrics (train_loss, val_loss, val_accuracy + val_f1 or val_rmse + val_mae +
    val_r2, learning_rate), then debug payloads, then the checkpoint:
    - "confusion_matrix": {"labels": [str], "matrix": [[count]]} (rows: true class, columns: predicted);
    - "gradient_norms": {layer name: mean over the epoch's batches of that layer's gradient L2 norm};
    - "learning_rate": {"value": float}.
    A checkpoint `state` is a flat dict of tensors and JSON values (see checkpoints.py to store it).

    Only rank 0 of a distributed run logs, checkpoints and writes artifacts; every rank calls
    `load_checkpoint` and `should_stop`.
    """

    device: torch.device
    output_dir: Path
    seed: int

    def log_metrics(self, metrics: dict[str, float], *, step: int) -> None: ...

    def log_debug(self, kind: str, payload: dict, *, step: int) -> None: ...

    def save_checkpoint(self, state: dict, *, epoch: int) -> None: ...

    def load_checkpoint(self) -> tuple[dict, int] | None: ...

    def should_stop(self) -> bool: ...

    def progress(self, fraction: float, message: str = "") -> None: ...


def _close_match(name: str, options: list[str]) -> str:
    matches = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _or_list(words) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _list_columns(schema: dict[str, str]) -> str:
    return ", ".join(f"{name} ({kind})" for name, kind in schema.items())


class Trainer:
    """One built-in trainer: its form (hyperparameters), its checks (`validate`) and its loop (`fit`)."""

    name: ClassVar[str]
    title: ClassVar[str]
    task: ClassVar[str]  # "classification" | "regression"
    data_kind: ClassVar[str]  # "tabular" | "image" | "text"
    hyperparameters: ClassVar[list[Hyperparameter]]
    target_types: ClassVar[tuple[str, ...]]
    default_target: ClassVar[str | None] = None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "task": self.task,
            "data_kind": self.data_kind,
            "target_types": list(self.target_types),
            "hyperparameters": [parameter.describe() for parameter in self.hyperparameters],
        }

    def validate(self, *, schema: dict[str, str], target: str | None, hyperparameters: dict) -> dict:
        """Return the hyperparameters normalized (types coerced, defaults filled), or raise TrainerError."""
        normalized = self.validate_hyperparameters(hyperparameters)
        self.validate_target(schema=schema, target=target)
        self.feature_columns(schema=schema, target=self.resolve_target(schema, target), hp=normalized)
        return normalized

    def validate_hyperparameters(self, hyperparameters: dict | None) -> dict:
        hyperparameters = dict(hyperparameters or {})
        known = {parameter.name: parameter for parameter in self.hyperparameters}
        for name in hyperparameters:
            if name not in known:
                raise TrainerError(
                    f"unknown hyperparameter {name!r} for {self.name}{_close_match(name, list(known))}; "
                    f"known: {', '.join(sorted(known))}",
                    code="unknown_hyperparameter",
                    field=name,
                )
        normalized = {}
        for name, parameter in known.items():
            value = hyperparameters.get(name, parameter.default)
            normalized[name] = parameter.coerce(list(value) if isinstance(value, tuple) else value)
        self.check_hyperparameters(normalized)
        return normalized

    def check_hyperparameters(self, hp: dict) -> None:
        """Check rules that span several hyperparameters (override in a trainer)."""

    def resolve_target(self, schema: dict[str, str], target: str | None) -> str | None:
        if target in (None, "") and self.default_target in schema:
            return self.default_target
        return target

    def validate_target(self, *, schema: dict[str, str], target: str | None) -> str:
        target = self.resolve_target(schema, target)
        if not schema:
            raise TrainerError("the dataset has no columns", code="invalid_data")
        if target in (None, ""):
            raise TrainerError(
                f"target: required for {self.name}; choose one of the columns: {_list_columns(schema)}",
                code="invalid_target",
                field="target",
            )
        if target not in schema:
            raise TrainerError(
                f"target {target!r} is not a column{_close_match(target, list(schema))}; "
                f"columns: {', '.join(schema)}",
                code="unknown_target",
                field="target",
            )
        if schema[target] not in self.target_types:
            allowed = _or_list(self.target_types)
            hint = ""
            if self.task == "regression" and schema[target] in ("categorical", "boolean"):
                hint = "; for a categorical or boolean target use a classification trainer"
            raise TrainerError(
                f"target {target!r} is {_article(schema[target])} {schema[target]} column; "
                f"{self.name} needs {_article(allowed)} {allowed} target{hint}",
                code="invalid_target",
                field="target",
            )
        return target

    def feature_columns(self, *, schema: dict[str, str], target: str | None, hp: dict) -> list[str]:
        """Return the columns this trainer learns from; raise TrainerError when there are none."""
        raise NotImplementedError

    def fit(
        self, data: TrainingData, *, target: str, hyperparameters: dict, context: TrainerContext
    ) -> dict[str, float]:
        """Train, log, checkpoint, write the model into context.output_dir; return the final metrics.

        When `context.should_stop()` turns true, return early with the metrics of the last completed
        epoch and write no model: the last checkpoint stays for a resume.
        """
        raise NotImplementedError
