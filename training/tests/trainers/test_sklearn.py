"""scikit-learn baselines: metrics logged once, ONNX export that predicts what scikit-learn predicts."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pandas as pd
import pytest

from training.trainers import get_trainer, load_model, predict
from training.trainers.recording import RecordingContext

CLASSIFIERS = ["sklearn_logistic_regression", "sklearn_random_forest"]
REGRESSORS = ["sklearn_ridge", "sklearn_random_forest_regressor"]
SMALL = {
    "sklearn_random_forest": {"n_estimators": 25},
    "sklearn_random_forest_regressor": {"n_estimators": 25},
}


def onnx_outputs(model_dir, frame: pd.DataFrame) -> list[np.ndarray]:
    """Run model.onnx directly (not through our predict) on the pipeline's own input frame."""
    card = json.loads((model_dir / "model.json").read_text())
    session = onnxruntime.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {}
    for entry in card["onnx_inputs"]:
        values = frame[entry["column"]].to_numpy()
        feed[entry["input"]] = (
            values.astype(np.float32) if entry["type"] == "float" else values.astype(object)
        ).reshape(-1, 1)
    return session.run(None, feed)


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize("dataset", ["wine", "customers"])
def test_classifier_onnx_predicts_like_scikit_learn(name, dataset, request, tmp_path):
    # given
    data = request.getfixturevalue(dataset)
    target = {"wine": "target", "customers": "churned"}[dataset]
    trainer = get_trainer(name)
    context = RecordingContext(tmp_path, seed=2)
    # when
    final = trainer.fit(data, target=target, hyperparameters=SMALL.get(name, {}), context=context)
    # then: one metrics step, a confusion matrix, the ONNX model and its card
    assert [step for step, _ in context.metrics] == [1]
    assert set(final) == {"train_loss", "train_accuracy", "train_f1", "val_loss", "val_accuracy", "val_f1"}
    assert final["val_accuracy"] > 0.7
    assert len(context.debug_of("confusion_matrix")) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.json", "model.onnx"]
    # and the exported graph gives scikit-learn's labels and probabilities on every row
    fitted = trainer.fit_pipeline(
        data, target=target, hp=trainer.validate_hyperparameters(SMALL.get(name, {})), seed=2
    )
    label, probabilities = onnx_outputs(tmp_path, fitted.features)
    np.testing.assert_array_equal(label, fitted.pipeline.predict(fitted.features))
    np.testing.assert_allclose(probabilities, fitted.pipeline.predict_proba(fitted.features), atol=1e-4)
    # and predict() on raw rows (with missing values and unseen categories) agrees with the graph
    raw = pd.read_parquet(data.parquet_path).iloc[fitted.targets.rows].drop(columns=target)
    result = predict(tmp_path, raw)
    labels = json.loads((tmp_path / "model.json").read_text())["labels"]
    assert result["predictions"] == [labels[index] for index in label]


@pytest.mark.parametrize("name", REGRESSORS)
def test_regressor_onnx_predicts_like_scikit_learn(name, diabetes, tmp_path):
    trainer = get_trainer(name)
    context = RecordingContext(tmp_path, seed=0)
    final = trainer.fit(diabetes, target="progression", hyperparameters=SMALL.get(name, {}), context=context)
    assert set(final) == {"train_rmse", "train_mae", "train_r2", "val_rmse", "val_mae", "val_r2"}
    assert final["val_r2"] > 0.3
    fitted = trainer.fit_pipeline(
        diabetes, target="progression", hp=trainer.validate_hyperparameters(SMALL.get(name, {})), seed=0
    )
    (variable,) = onnx_outputs(tmp_path, fitted.features)
    np.testing.assert_allclose(
        variable.reshape(-1), fitted.pipeline.predict(fitted.features), rtol=1e-4, atol=1e-3
    )
    rows = pd.read_parquet(diabetes.parquet_path).drop(columns="progression").head(10).to_dict("records")
    np.testing.assert_allclose(predict(tmp_path, rows)["predictions"], variable.reshape(-1)[:10], rtol=1e-6)


def test_model_card_records_the_shared_preprocessing(customers, tmp_path):
    context = RecordingContext(tmp_path, seed=0)
    get_trainer("sklearn_logistic_regression").fit(
        customers, target="churned", hyperparameters={"max_categories": 2}, context=context
    )
    card = load_model(tmp_path).card
    assert card["framework"] == "sklearn"
    assert card["files"] == {"onnx": "model.onnx"}
    assert [entry["column"] for entry in card["onnx_inputs"]] == [
        "tenure_months",
        "monthly_spend",
        "plan",
        "autopay",
    ]
    assert [entry["type"] for entry in card["onnx_inputs"]] == ["float", "float", "string", "string"]
    plan = card["preprocessing"]["columns"][2]
    assert plan["encoding"] == "one_hot"
    assert len(plan["categories"]) == 2
    spend = card["preprocessing"]["columns"][1]
    assert spend["encoding"] == "standardize"
    assert spend["mean"] > 0
    assert [column["name"] for column in card["dropped_columns"]] == ["notes", "signup"]
    assert card["hyperparameters"]["max_categories"] == 2


def test_column_names_that_are_not_identifiers(tmp_path):
    frame = pd.DataFrame({"age (years)": np.arange(40.0), "home city": ["a b", "c"] * 20, "y": [0, 1] * 20})
    path = tmp_path / "odd.parquet"
    frame.to_parquet(path)
    from training.trainers import TrainingData

    data = TrainingData(path, {"age (years)": "numeric", "home city": "categorical", "y": "categorical"})
    get_trainer("sklearn_logistic_regression").fit(
        data, target="y", hyperparameters={}, context=RecordingContext(tmp_path / "m")
    )
    result = predict(
        tmp_path / "m", [{"age (years)": 3, "home city": "c"}, {"age (years)": 4, "home city": "a b"}]
    )
    assert result["predictions"] == [1, 0]


def test_forests_impute_but_do_not_scale(diabetes, tmp_path):
    get_trainer("sklearn_random_forest_regressor").fit(
        diabetes,
        target="progression",
        hyperparameters={"n_estimators": 5},
        context=RecordingContext(tmp_path),
    )
    columns = load_model(tmp_path).card["preprocessing"]["columns"]
    assert {column["encoding"] for column in columns} == {"impute_mean"}
    assert columns[0]["name"] == "age"
    assert columns[0]["mean"] == pytest.approx(48.5, abs=1.0)
