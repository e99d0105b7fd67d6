"""The tabular MLP trainers: metrics and debugger payloads per epoch, checkpoints, resume, artifacts."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from training.trainers import TrainerError, TrainingDiverged, get_trainer, load_model, predict
from training.trainers.modules import MLP
from training.trainers.recording import RecordingContext

FAST = {"hidden_layers": [16], "lr": 0.02, "batch_size": 32}


def fit(trainer, data, target, context, **hyperparameters):
    return get_trainer(trainer).fit(data, target=target, hyperparameters=hyperparameters, context=context)


def torchscript(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path))


def test_classification_logs_metrics_debug_and_checkpoints_every_epoch(iris, tmp_path):
    # given
    context = RecordingContext(tmp_path, seed=1)
    # when
    final = fit("tabular_classification", iris, "species", context, epochs=8, **FAST)
    # then
    assert [step for step, _ in context.metrics] == list(range(1, 9))
    assert set(context.metrics[0][1]) == {"train_loss", "val_loss", "val_accuracy", "val_f1", "learning_rate"}
    losses = [value for _, value in context.history("train_loss")]
    assert losses[-1] < losses[0] / 2
    assert final["val_accuracy"] >= 0.9
    assert final["val_accuracy"] == context.metrics[-1][1]["val_accuracy"]
    assert final["epochs_completed"] == 8
    assert context.checkpoint_epochs == list(range(1, 9))
    assert context.progress_updates[-1][0] == 1.0

    step, confusion = context.debug_of("confusion_matrix")[-1]
    assert step == 8
    assert confusion["labels"] == ["setosa", "versicolor", "virginica"]
    matrix = np.array(confusion["matrix"])
    assert matrix.shape == (3, 3)
    assert matrix.sum() == 30  # 20% of 150, stratified
    assert np.trace(matrix) / matrix.sum() == pytest.approx(final["val_accuracy"])

    norms = context.debug_of("gradient_norms")
    assert len(norms) == 8
    assert list(norms[0][1]) == ["net.hidden1", "net.output"]
    assert all(value > 0 for value in norms[0][1].values())
    rates = [payload["value"] for _, payload in context.debug_of("learning_rate")]
    assert rates == [value for _, value in context.history("learning_rate")]
    assert rates[0] == pytest.approx(0.02)
    assert rates == sorted(rates, reverse=True)  # cosine decay


def test_model_artifacts_rebuild_without_unpickling(iris, tmp_path, monkeypatch):
    # given a trained classifier
    context = RecordingContext(tmp_path, seed=1)
    final = fit("tabular_classification", iris, "species", context, epochs=12, **FAST)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "model.json",
        "model.safetensors",
        "model.torchscript.pt",
    ]
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["trainer"] == "tabular_classification"
    assert card["labels"] == ["setosa", "versicolor", "virginica"]
    assert card["inputs"] == [
        {"name": "sepal_length", "type": "numeric"},
        {"name": "sepal_width", "type": "numeric"},
        {"name": "petal_length", "type": "numeric"},
        {"name": "petal_width", "type": "numeric"},
    ]
    assert card["architecture"] == {
        "kind": "mlp",
        "input_size": 4,
        "hidden_layers": [16],
        "output_size": 3,
        "dropout": 0.1,
        "activation": "relu",
    }
    assert card["metrics"] == final
    assert card["hyperparameters"]["seed"] == 1
    assert card["training"]["rows_train"] == 120
    # when serving code loads and predicts, nothing may unpickle
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: pytest.fail("torch.load used"))
    monkeypatch.setattr(pickle, "loads", lambda *args, **kwargs: pytest.fail("pickle used"))
    monkeypatch.setattr(pickle, "load", lambda *args, **kwargs: pytest.fail("pickle used"))
    rows = pd.read_parquet(iris.parquet_path).drop(columns="species")
    model = load_model(tmp_path)
    result = predict(model, rows)
    monkeypatch.undo()
    # then
    truth = pd.read_parquet(iris.parquet_path)["species"].tolist()
    assert np.mean(np.array(result["predictions"]) == np.array(truth)) >= 0.9
    assert np.allclose(np.array(result["probabilities"]).sum(axis=1), 1.0)
    # and the TorchScript file computes the same logits from the preprocessed features
    features = torch.from_numpy(model.preprocessor.transform(rows))
    logits = torchscript(tmp_path / "model.torchscript.pt")(features)
    np.testing.assert_allclose(torch.softmax(logits, 1).detach().numpy(), result["probabilities"], atol=1e-6)


def test_regression_reports_errors_in_target_units(diabetes, tmp_path):
    context = RecordingContext(tmp_path, seed=0)
    final = fit(
        "tabular_regression", diabetes, "progression", context, epochs=25, hidden_layers=[32], lr=0.01
    )
    assert set(context.metrics[0][1]) == {
        "train_loss",
        "val_loss",
        "val_rmse",
        "val_mae",
        "val_r2",
        "learning_rate",
    }
    assert final["val_r2"] > 0.3
    assert 30 < final["val_rmse"] < 80  # progression is 25..346
    assert not context.debug_of("confusion_matrix")
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["labels"] is None
    assert card["target_scaling"]["mean"] == pytest.approx(152, abs=10)
    rows = pd.read_parquet(diabetes.parquet_path).head(20)
    predicted = np.array(predict(tmp_path, rows)["predictions"])
    model = load_model(tmp_path)
    scripted = torchscript(tmp_path / "model.torchscript.pt")(
        torch.from_numpy(model.preprocessor.transform(rows))
    )
    np.testing.assert_allclose(scripted.detach().numpy(), predicted, rtol=1e-5)
    assert 25 < predicted.mean() < 346


def test_resumed_run_matches_an_uninterrupted_one(wine, tmp_path):
    hyperparameters = {"epochs": 6, "hidden_layers": [32, 16], "dropout": 0.3, "lr": 0.01, "batch_size": 32}
    # given an uninterrupted 6-epoch run
    straight = RecordingContext(tmp_path / "straight", seed=3)
    expected = fit("tabular_classification", wine, "target", straight, **hyperparameters)
    # when a run is stopped after its 3rd checkpoint (mid-way through epoch 4) ...
    first = RecordingContext(
        tmp_path / "resumed", seed=3, stop_when=lambda context: len(context.checkpoint_epochs) >= 3
    )
    partial = fit("tabular_classification", wine, "target", first, **hyperparameters)
    assert [step for step, _ in first.metrics] == [1, 2, 3]
    assert partial == first.metrics[-1][1]
    assert not (tmp_path / "resumed" / "model.json").exists()  # stopped: no model, the checkpoint stays
    # ... and a new process resumes from that checkpoint
    second = RecordingContext(tmp_path / "resumed", seed=3)
    second.resume_from(first)
    resumed = fit("tabular_classification", wine, "target", second, **hyperparameters)
    # then the metric history continues at epoch 4 and equals the uninterrupted one
    assert [step for step, _ in second.metrics] == [4, 5, 6]
    combined = first.metrics + second.metrics
    assert [step for step, _ in combined] == [step for step, _ in straight.metrics]
    for (_, got), (_, want) in zip(combined, straight.metrics, strict=True):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert resumed == pytest.approx(expected, rel=1e-6, abs=1e-7)
    weights = load_file(tmp_path / "resumed" / "model.safetensors")
    reference = load_file(tmp_path / "straight" / "model.safetensors")
    assert weights.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(weights[key], reference[key], rtol=1e-6, atol=1e-7)


def test_resuming_a_finished_run_only_writes_the_model(iris, tmp_path):
    done = RecordingContext(tmp_path / "done", seed=0)
    expected = fit("tabular_classification", iris, "species", done, epochs=2, **FAST)
    again = RecordingContext(tmp_path / "again", seed=0)
    again.resume_from(done)
    assert fit("tabular_classification", iris, "species", again, epochs=2, **FAST) == expected
    assert again.metrics == []
    assert (tmp_path / "again" / "model.safetensors").is_file()


def test_a_checkpoint_of_another_configuration_is_refused(iris, tmp_path):
    first = RecordingContext(tmp_path / "a", seed=0)
    fit("tabular_classification", iris, "species", first, epochs=1, **FAST)
    second = RecordingContext(tmp_path / "b", seed=0)
    second.resume_from(first)
    with pytest.raises(TrainerError) as caught:
        fit("tabular_classification", iris, "species", second, epochs=1, **(FAST | {"hidden_layers": [8]}))
    assert caught.value.code == "checkpoint_mismatch"


def test_stop_before_the_first_epoch_ends(iris, tmp_path):
    context = RecordingContext(tmp_path, seed=0, stop_when=lambda context: True)
    assert fit("tabular_classification", iris, "species", context, epochs=5, **FAST) == {}
    assert context.stop_checks == 1  # checked after the first batch
    assert context.metrics == []
    assert context.checkpoint_epochs == []
    assert not (tmp_path / "model.json").exists()


def test_nan_loss_stops_training_with_training_diverged(iris, tmp_path, monkeypatch):
    # given a network whose output turns NaN
    original = MLP.forward
    monkeypatch.setattr(MLP, "forward", lambda self, x: original(self, x) * float("nan"))
    context = RecordingContext(tmp_path, seed=0)
    # when / then
    with pytest.raises(TrainingDiverged) as caught:
        fit("tabular_classification", iris, "species", context, epochs=3, **FAST)
    assert isinstance(caught.value, TrainerError)
    assert caught.value.code == "training_diverged"
    assert (caught.value.epoch, caught.value.batch) == (1, 1)
    assert "NaN" in caught.value.message
    assert context.metrics == []
    assert not (tmp_path / "model.json").exists()


def test_mixed_column_types_and_missing_values(customers, tmp_path):
    context = RecordingContext(tmp_path, seed=0)
    final = fit("tabular_classification", customers, "churned", context, epochs=10, **FAST)
    assert final["val_accuracy"] > 0.7
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["labels"] == ["no", "yes"]
    assert card["inputs"] == [
        {"name": "tenure_months", "type": "numeric"},
        {"name": "monthly_spend", "type": "numeric"},
        {"name": "plan", "type": "categorical"},
        {"name": "autopay", "type": "boolean"},
    ]
    assert [(column["name"], column["type"]) for column in card["dropped_columns"]] == [
        ("notes", "text"),
        ("signup", "datetime"),
    ]
    plan = card["preprocessing"]["columns"][2]
    assert plan["encoding"] == "one_hot"
    assert sorted(plan["categories"]) == ["basic", "enterprise", "plus", "pro"]
    assert card["preprocessing"]["columns"][3]["categories"] == ["False", "True"] or card["preprocessing"][
        "columns"
    ][3]["categories"] == ["True", "False"]
    result = predict(
        tmp_path,
        [
            {"tenure_months": 2, "monthly_spend": 300.0, "plan": "basic", "autopay": False},
            {"tenure_months": 50, "monthly_spend": None, "plan": "platinum"},  # unseen plan, missing values
        ],
    )
    assert result["labels"] == ["no", "yes"]
    assert result["predictions"][0] == "yes"
    assert len(result["probabilities"][1]) == 2


def test_boolean_target_keeps_its_labels(breast_cancer, tmp_path):
    context = RecordingContext(tmp_path, seed=0)
    final = fit("tabular_classification", breast_cancer, "malignant", context, epochs=4, **FAST)
    assert final["val_accuracy"] > 0.85
    assert json.loads((tmp_path / "model.json").read_text())["labels"] == [False, True]
    assert predict(tmp_path, pd.read_parquet(breast_cancer.parquet_path).head(3))["predictions"][0] in (
        False,
        True,
    )


def test_early_stopping_keeps_the_best_epoch(wine, tmp_path):
    context = RecordingContext(tmp_path, seed=0)
    final = fit(
        "tabular_classification",
        wine,
        "target",
        context,
        epochs=60,
        early_stopping_patience=2,
        hidden_layers=[64],
        dropout=0.0,
        lr=0.05,
        lr_schedule="constant",
        batch_size=16,
    )
    losses = [value for _, value in context.history("val_loss")]
    best = int(final["best_epoch"])
    assert final["epochs_completed"] == len(losses) < 60
    assert losses[best - 1] == min(losses)
    assert len(losses) == best + 2  # patience 2: two epochs without a lower validation loss
    assert final["val_loss"] == losses[best - 1]
    assert json.loads((tmp_path / "model.json").read_text())["training"]["best_epoch"] == best


def test_missing_dataset_file_is_a_trainer_error(iris, tmp_path):
    from training.trainers import TrainingData

    missing = TrainingData(tmp_path / "gone.parquet", iris.schema)
    with pytest.raises(TrainerError, match="the dataset file gone.parquet is missing"):
        fit("tabular_classification", missing, "species", RecordingContext(tmp_path), epochs=1)


def test_fit_validates_its_input(iris, tmp_path):
    with pytest.raises(TrainerError, match="epochs: expected an integer, got 'ten'"):
        fit("tabular_classification", iris, "species", RecordingContext(tmp_path), epochs="ten")
    with pytest.raises(TrainerError, match="target 'churnd' is not a column"):
        fit("tabular_classification", iris, "churnd", RecordingContext(tmp_path))
