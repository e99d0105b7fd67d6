"""scikit-learn baselines for tabular data, exported to ONNX (no pickle anywhere).

The preprocessing is the MLP's (see preprocessing.py) expressed as a ColumnTransformer: numeric
columns go through SimpleImputer(mean) + StandardScaler, categorical and boolean columns through a
OneHotEncoder over the top `max_categories` training values with handle_unknown="ignore" (unseen ->
zeros). The whole Pipeline becomes one ONNX graph with one input per column ([N, 1] float32 for
numeric, [N, 1] string for categorical/boolean; the card's `onnx_inputs` maps columns to input names).
Classes are trained as ids 0..K-1, so the graph's `label` output indexes the card's `labels`.

One fit, no epochs: metrics are logged once at step 1 and nothing is checkpointed; a redelivered job
fits again (same seed, same result).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training.trainers.artifacts import ONNX_FILE, write_card
from training.trainers.base import Hyperparameter, Trainer, TrainerContext, TrainingData
from training.trainers.hyperparameters import MAX_CATEGORIES, SEED, VALIDATION_FRACTION
from training.trainers.preprocessing import (
    TabularPreprocessor,
    Targets,
    category_key,
    encode_target,
    read_table,
    require_tabular_features,
    split_rows,
    tabular_columns,
)

ONNX_OPSET = 17  # ops every onnxruntime of the last years runs; skl2onnx 1.20 tests up to 22

N_ESTIMATORS = Hyperparameter("n_estimators", "int", 100, min=1, max=5000, help="Trees in the forest.")
MAX_DEPTH = Hyperparameter(
    "max_depth",
    "int",
    None,
    min=1,
    max=1000,
    optional=True,
    help="Deepest a tree may grow; empty: unlimited.",
)
MIN_SAMPLES_LEAF = Hyperparameter(
    "min_samples_leaf", "int", 1, min=1, max=100_000, help="Fewest training rows in a leaf."
)
N_JOBS = Hyperparameter("n_jobs", "int", 1, min=1, max=256, help="CPU cores used to grow the trees.")
CLASS_WEIGHT = Hyperparameter(
    "class_weight",
    "str",
    "none",
    choices=("none", "balanced"),
    help="balanced: weight classes inversely to their frequency.",
)


def _max_features(default: str) -> Hyperparameter:
    return Hyperparameter(
        "max_features",
        "str",
        default,
        choices=("sqrt", "log2", "all"),
        help="Features considered at each split.",
    )


COMMON = [MAX_CATEGORIES, VALIDATION_FRACTION, SEED]


@dataclass
class FittedPipeline:
    pipeline: Any
    plan: TabularPreprocessor
    features: Any  # the pipeline's input frame, every row with a target
    targets: Targets
    train_rows: np.ndarray
    validation_rows: np.ndarray
    split: str
    dropped: list[dict]
    seed: int


class SklearnTrainer(Trainer):
    data_kind = "tabular"
    # Forests skip the standardization: trees do not care about scale, and scikit-learn 1.9 puts split
    # thresholds on data values, so ONNX's float32 (x - mean) / std landing one ulp off flips splits.
    scale_numeric = True

    def feature_columns(self, *, schema: dict[str, str], target: str | None, hp: dict) -> list[str]:
        return require_tabular_features(schema, target)

    def estimator(self, hp: dict, seed: int):
        raise NotImplementedError

    def architecture(self, hp: dict) -> dict:
        return {"kind": "sklearn", "estimator": self.estimator_name}

    def fit(
        self, data: TrainingData, *, target: str, hyperparameters: dict, context: TrainerContext
    ) -> dict[str, float]:
        import sklearn

        hp = self.validate(schema=data.schema, target=target, hyperparameters=hyperparameters)
        target = self.resolve_target(data.schema, target)
        if context.should_stop():
            return {}
        context.progress(0.0, f"fitting {self.estimator_name}")
        fitted = self.fit_pipeline(
            data, target=target, hp=hp, seed=context.seed if hp["seed"] is None else hp["seed"]
        )
        seed, plan, pipeline = fitted.seed, fitted.plan, fitted.pipeline
        train_rows, validation_rows, targets = fitted.train_rows, fitted.validation_rows, fitted.targets
        metrics, debug = self._metrics(
            pipeline, fitted.features, targets.values, train_rows, validation_rows, targets.labels
        )
        context.log_metrics(metrics, step=1)
        for kind, payload in debug.items():
            context.log_debug(kind, payload, step=1)
        if context.should_stop():
            return metrics
        context.progress(0.9, "exporting to ONNX")
        model_bytes, onnx_inputs = export_onnx(
            pipeline, plan.columns, classification=self.task == "classification"
        )
        output_dir = context.output_dir
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "model.onnx").write_bytes(model_bytes)
        write_card(
            output_dir,
            {
                "trainer": self.name,
                "title": self.title,
                "task": self.task,
                "data_kind": "tabular",
                "framework": "sklearn",
                "framework_version": sklearn.__version__,
                "target": {"name": target, "type": data.schema[target]},
                "labels": targets.labels,
                "inputs": [{"name": column["name"], "type": column["type"]} for column in plan.columns],
                "dropped_columns": fitted.dropped + plan.spec["dropped"],
                "preprocessing": fitted_preprocessing(pipeline, plan),
                "architecture": self.architecture(hp),
                "hyperparameters": {**hp, "seed": seed},
                "metrics": metrics,
                "training": {
                    "rows_train": int(len(train_rows)),
                    "rows_validation": int(len(validation_rows)),
                    "split": fitted.split,
                },
                "onnx_inputs": onnx_inputs,
                "onnx_opset": ONNX_OPSET,
                "outputs": (
                    {
                        "kind": "class_probabilities",
                        "labels": targets.labels,
                        "onnx": ["label", "probabilities"],
                    }
                    if self.task == "classification"
                    else {"kind": "value", "unit": "target", "onnx": ["variable"]}
                ),
                "files": {"onnx": ONNX_FILE},
            },
        )
        context.progress(1.0, "done")
        return metrics

    def fit_pipeline(self, data: TrainingData, *, target: str, hp: dict, seed: int) -> FittedPipeline:
        """Read, split and fit (no logging, no files): what `fit` exports, and what tests compare to."""
        columns, dropped = tabular_columns(data.schema, target)
        frame = read_table(data, [*columns, target])
        targets = encode_target(frame[target], task=self.task, name=target)
        frame = frame.iloc[targets.rows].reset_index(drop=True)
        train_rows, validation_rows, split = split_rows(
            targets.values, task=self.task, validation_fraction=hp["validation_fraction"], seed=seed
        )
        # The top-k categories (and which columns survive) come from the shared preprocessing.
        plan = TabularPreprocessor.fit(frame.iloc[train_rows], columns, max_categories=hp["max_categories"])
        features = sklearn_frame(frame, plan.columns)
        pipeline = build_pipeline(plan.columns, self.estimator(hp, seed), scale_numeric=self.scale_numeric)
        pipeline.fit(features.iloc[train_rows], targets.values[train_rows])
        return FittedPipeline(
            pipeline, plan, features, targets, train_rows, validation_rows, split, dropped, seed
        )

    def _metrics(self, pipeline, features, y, train_rows, validation_rows, labels):
        from training.trainers.metrics import (
            classification_metrics,
            confusion_matrix,
            confusion_payload,
            regression_metrics,
        )

        metrics: dict[str, float] = {}
        debug: dict[str, dict] = {}
        for prefix, rows in (("train", train_rows), ("val", validation_rows)):
            truth = y[rows]
            if self.task == "classification":
                probabilities = pipeline.predict_proba(features.iloc[rows])
                predicted = probabilities.argmax(axis=1)
                chosen = np.clip(probabilities[np.arange(len(rows)), truth], 1e-15, 1.0)
                matrix = confusion_matrix(truth, predicted, len(labels))
                scores = classification_metrics(matrix)
                metrics[f"{prefix}_loss"] = float(-np.log(chosen).mean())
                metrics[f"{prefix}_accuracy"] = scores["accuracy"]
                metrics[f"{prefix}_f1"] = scores["f1"]
                if prefix == "val":
                    debug["confusion_matrix"] = confusion_payload(matrix, labels)
            else:
                scores = regression_metrics(truth, pipeline.predict(features.iloc[rows]))
                metrics.update({f"{prefix}_{name}": value for name, value in scores.items()})
        return metrics, debug


def sklearn_frame(frame, columns: list[dict]):
    """Return the columns as the pipeline (and the ONNX graph) take them: float64 with NaN for a missing
    number, strings with "" for a missing category."""
    import pandas as pd

    data = {}
    for column in columns:
        series = frame[column["name"]]
        if column["encoding"] == "standardize":
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            data[column["name"]] = np.where(np.isfinite(values), values, np.nan)
        else:
            data[column["name"]] = np.array(
                [category_key(value) or "" for value in series.tolist()], dtype=object
            )
    return pd.DataFrame(data)


def build_pipeline(columns: list[dict], estimator, *, scale_numeric: bool = True):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    transformers = []
    for number, column in enumerate(columns):
        if column["encoding"] == "standardize" and scale_numeric:
            step = Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())])
        elif column["encoding"] == "standardize":
            step = Pipeline([("impute", SimpleImputer(strategy="mean"))])
        else:
            step = OneHotEncoder(
                categories=[column["categories"]], handle_unknown="ignore", sparse_output=False
            )
        transformers.append((f"column{number}", step, [column["name"]]))
    return Pipeline([("preprocess", ColumnTransformer(transformers, remainder="drop")), ("model", estimator)])


def fitted_preprocessing(pipeline, plan: TabularPreprocessor) -> dict:
    """Return the fitted pipeline's preprocessing in the same JSON shape the MLP records."""
    transformers = pipeline.named_steps["preprocess"].named_transformers_
    columns = []
    for number, column in enumerate(plan.columns):
        fitted = transformers[f"column{number}"]
        if column["encoding"] == "standardize":
            mean = float(fitted.named_steps["impute"].statistics_[0])
            if "scale" in fitted.named_steps:
                columns.append({**column, "mean": mean, "std": float(fitted.named_steps["scale"].scale_[0])})
            else:
                columns.append({**column, "encoding": "impute_mean", "mean": mean, "std": None})
        else:
            columns.append(dict(column))
    return {**plan.spec, "columns": columns, "feature_names": plan.feature_names}


def export_onnx(pipeline, columns: list[dict], *, classification: bool) -> tuple[bytes, list[dict]]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial_types = [
        (
            column["name"],
            FloatTensorType([None, 1])
            if column["encoding"] == "standardize"
            else StringTensorType([None, 1]),
        )
        for column in columns
    ]
    options = {id(pipeline.named_steps["model"]): {"zipmap": False}} if classification else None
    model = convert_sklearn(pipeline, initial_types=initial_types, options=options, target_opset=ONNX_OPSET)
    # skl2onnx renames inputs that are not identifiers ("age col" -> "age_col"); keep the mapping.
    onnx_inputs = [
        {
            "column": column["name"],
            "input": graph_input.name,
            "type": "float" if column["encoding"] == "standardize" else "string",
        }
        for column, graph_input in zip(columns, model.graph.input, strict=True)
    ]
    return model.SerializeToString(), onnx_inputs


class SklearnLogisticRegressionTrainer(SklearnTrainer):
    name = "sklearn_logistic_regression"
    title = "Logistic regression (scikit-learn)"
    task = "classification"
    target_types = ("categorical", "boolean", "numeric")
    estimator_name = "LogisticRegression"
    hyperparameters = [
        Hyperparameter("C", "float", 1.0, min=1e-6, max=1e6, help="Inverse regularization strength."),
        Hyperparameter("max_iter", "int", 1000, min=10, max=100_000, help="Solver iterations."),
        CLASS_WEIGHT,
        *COMMON,
    ]

    def estimator(self, hp: dict, seed: int):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=hp["C"],
            max_iter=hp["max_iter"],
            class_weight=None if hp["class_weight"] == "none" else hp["class_weight"],
            random_state=seed,
        )


class SklearnRandomForestTrainer(SklearnTrainer):
    name = "sklearn_random_forest"
    title = "Random forest classifier (scikit-learn)"
    task = "classification"
    target_types = ("categorical", "boolean", "numeric")
    estimator_name = "RandomForestClassifier"
    scale_numeric = False
    hyperparameters = [
        N_ESTIMATORS,
        MAX_DEPTH,
        MIN_SAMPLES_LEAF,
        _max_features("sqrt"),
        CLASS_WEIGHT,
        N_JOBS,
        *COMMON,
    ]

    def estimator(self, hp: dict, seed: int):
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=hp["n_estimators"],
            max_depth=hp["max_depth"],
            min_samples_leaf=hp["min_samples_leaf"],
            max_features=None if hp["max_features"] == "all" else hp["max_features"],
            class_weight=None if hp["class_weight"] == "none" else hp["class_weight"],
            n_jobs=hp["n_jobs"],
            random_state=seed,
        )


class SklearnRidgeTrainer(SklearnTrainer):
    name = "sklearn_ridge"
    title = "Ridge regression (scikit-learn)"
    task = "regression"
    target_types = ("numeric",)
    estimator_name = "Ridge"
    hyperparameters = [
        Hyperparameter("alpha", "float", 1.0, min=0.0, max=1e6, help="L2 regularization strength."),
        *COMMON,
    ]

    def estimator(self, hp: dict, seed: int):
        from sklearn.linear_model import Ridge

        return Ridge(alpha=hp["alpha"], random_state=seed)


class SklearnRandomForestRegressorTrainer(SklearnTrainer):
    name = "sklearn_random_forest_regressor"
    title = "Random forest regressor (scikit-learn)"
    task = "regression"
    target_types = ("numeric",)
    estimator_name = "RandomForestRegressor"
    scale_numeric = False
    hyperparameters = [
        N_ESTIMATORS,
        MAX_DEPTH,
        MIN_SAMPLES_LEAF,
        _max_features("all"),
        N_JOBS,
        *COMMON,
    ]

    def estimator(self, hp: dict, seed: int):
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=hp["n_estimators"],
            max_depth=hp["max_depth"],
            min_samples_leaf=hp["min_samples_leaf"],
            max_features=None if hp["max_features"] == "all" else hp["max_features"],
            n_jobs=hp["n_jobs"],
            random_state=seed,
        )
