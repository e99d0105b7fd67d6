"""Bad input: every case gets a TrainerError whose message names the field or column."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from training.trainers import TRAINERS, TrainerError, get_trainer
from training.trainers.base import Hyperparameter

IRIS_SCHEMA = {
    "sepal_length": "numeric",
    "sepal_width": "numeric",
    "petal_length": "numeric",
    "petal_width": "numeric",
    "species": "categorical",
}


def validate(trainer: str, hyperparameters: dict | None = None, *, schema=None, target="species") -> dict:
    return get_trainer(trainer).validate(
        schema=IRIS_SCHEMA if schema is None else schema, target=target, hyperparameters=hyperparameters or {}
    )


def test_importing_the_registry_loads_neither_torch_nor_sklearn():
    # given a fresh interpreter (the web process validates jobs without the training stack)
    code = "import sys, training.trainers; print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    # when
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # then
    assert result.stdout.strip() == "[]"


def test_registry_lists_the_built_in_trainers_with_json_descriptions():
    assert set(TRAINERS) == {
        "tabular_classification",
        "tabular_regression",
        "image_classification",
        "text_classification",
        "sklearn_logistic_regression",
        "sklearn_random_forest",
        "sklearn_ridge",
        "sklearn_random_forest_regressor",
    }
    for trainer in TRAINERS.values():
        description = json.loads(json.dumps(trainer.describe()))
        assert description["task"] in ("classification", "regression")
        assert description["data_kind"] in ("tabular", "image", "text")
        names = [parameter["name"] for parameter in description["hyperparameters"]]
        assert len(names) == len(set(names)), trainer.name


def test_unknown_trainer_lists_the_known_names():
    with pytest.raises(TrainerError) as caught:
        get_trainer("tabular_clasification")
    assert caught.value.code == "unknown_trainer"
    assert "did you mean 'tabular_classification'" in caught.value.message
    assert "sklearn_ridge" in caught.value.message


def test_defaults_are_filled_in_and_types_normalized():
    hp = validate("tabular_classification", {"epochs": "12", "lr": "0.01", "hidden_layers": "32, 16"})
    assert hp["epochs"] == 12
    assert hp["lr"] == 0.01
    assert hp["hidden_layers"] == [32, 16]
    assert hp["batch_size"] == 64
    assert hp["early_stopping_patience"] is None
    assert validate("tabular_classification", {"hidden_layers": "[8]", "epochs": 3.0})["hidden_layers"] == [8]
    assert (
        validate(
            "image_classification",
            {"augment_flip": "false"},
            schema={"image": "image", "label": "categorical"},
            target=None,
        )["augment_flip"]
        is False
    )


def test_validation_is_idempotent():
    first = validate("tabular_regression", {"epochs": "5"}, target="sepal_length")
    assert validate("tabular_regression", first, target="sepal_length") == first


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"epochs": "ten"}, "epochs: expected an integer, got 'ten'"),
        ({"epochs": True}, "epochs: expected an integer, got True"),
        ({"epochs": 2.5}, "epochs: expected an integer, got 2.5"),
        ({"lr": "fast"}, "lr: expected a number, got 'fast'"),
        ({"lr": float("nan")}, "lr: expected a finite number"),
        ({"hidden_layers": "64,wide"}, "hidden_layers: expected a list of integers"),
        ({"hidden_layers": {"a": 1}}, "hidden_layers: expected a list of integers"),
        ({"lr_schedule": 3}, "lr_schedule: expected a string, got 3"),
        ({"epochs": None}, "epochs: expected a value, got None"),
    ],
)
def test_wrong_types_name_the_hyperparameter(hyperparameters, message):
    with pytest.raises(TrainerError) as caught:
        validate("tabular_classification", hyperparameters)
    assert message in caught.value.message
    assert caught.value.code == "invalid_hyperparameter"
    assert caught.value.field == next(iter(hyperparameters))


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"epochs": 0}, "epochs: must be between 1 and 10000, got 0"),
        ({"lr": -1}, "lr: must be between 1e-07 and 10, got -1"),
        ({"dropout": 0.95}, "dropout: must be between 0 and 0.9, got 0.95"),
        ({"hidden_layers": [64, 0]}, "hidden_layers: must be between 1 and 4096, got 0"),
        ({"hidden_layers": [8] * 9}, "hidden_layers: at most 8 values, got 9"),
        ({"lr_schedule": "linear"}, "lr_schedule: must be one of 'constant', 'cosine', got 'linear'"),
        ({"validation_fraction": 0.9}, "validation_fraction: must be between 0.05 and 0.5"),
    ],
)
def test_out_of_range_values_say_the_range(hyperparameters, message):
    with pytest.raises(TrainerError) as caught:
        validate("tabular_classification", hyperparameters)
    assert message in caught.value.message


def test_unknown_hyperparameter_suggests_and_lists_the_known_ones():
    with pytest.raises(TrainerError) as caught:
        validate("tabular_classification", {"epoch": 3})
    assert caught.value.code == "unknown_hyperparameter"
    assert caught.value.field == "epoch"
    assert (
        "unknown hyperparameter 'epoch' for tabular_classification (did you mean 'epochs'?)"
        in caught.value.message
    )
    assert "hidden_layers" in caught.value.message


def test_scikit_learn_trainers_refuse_torch_hyperparameters():
    with pytest.raises(TrainerError, match="unknown hyperparameter 'epochs' for sklearn_random_forest"):
        validate("sklearn_random_forest", {"epochs": 3})


def test_target_missing_from_the_dataset_lists_the_columns():
    with pytest.raises(TrainerError) as caught:
        validate("tabular_classification", target="specie")
    assert caught.value.code == "unknown_target"
    assert caught.value.field == "target"
    assert caught.value.message == (
        "target 'specie' is not a column (did you mean 'species'?); "
        "columns: sepal_length, sepal_width, petal_length, petal_width, species"
    )


def test_target_is_required():
    with pytest.raises(
        TrainerError, match="target: required for tabular_regression; choose one of the columns"
    ):
        validate("tabular_regression", target=None)


@pytest.mark.parametrize(
    ("trainer", "schema", "target", "message"),
    [
        (
            "tabular_regression",
            IRIS_SCHEMA,
            "species",
            "target 'species' is a categorical column; tabular_regression needs a numeric target; "
            "for a categorical or boolean target use a classification trainer",
        ),
        (
            "tabular_classification",
            IRIS_SCHEMA | {"comment": "text"},
            "comment",
            "target 'comment' is a text column; "
            "tabular_classification needs a categorical, boolean or numeric target",
        ),
        (
            "sklearn_ridge",
            IRIS_SCHEMA | {"when": "datetime"},
            "when",
            "target 'when' is a datetime column; sklearn_ridge needs a numeric target",
        ),
        (
            "image_classification",
            {"image": "image", "label": "categorical"},
            "image",
            "target 'image' is an image column; "
            "image_classification needs a categorical, boolean or numeric target",
        ),
    ],
)
def test_target_of_the_wrong_type(trainer, schema, target, message):
    with pytest.raises(TrainerError) as caught:
        validate(trainer, schema=schema, target=target)
    assert caught.value.code == "invalid_target"
    assert caught.value.message == message


@pytest.mark.parametrize("trainer", ["tabular_classification", "sklearn_logistic_regression"])
def test_no_usable_feature_columns(trainer):
    schema = {"notes": "text", "when": "datetime", "label": "categorical"}
    with pytest.raises(TrainerError) as caught:
        validate(trainer, schema=schema, target="label")
    assert caught.value.code == "no_features"
    assert "no usable feature columns" in caught.value.message
    assert "notes (text), when (datetime)" in caught.value.message


def test_image_trainer_needs_an_image_column_and_defaults_its_target_to_label():
    with pytest.raises(TrainerError, match="image_classification needs an image column"):
        validate("image_classification", schema=IRIS_SCHEMA, target="species")
    hp = validate("image_classification", schema={"image": "image", "label": "categorical"}, target=None)
    assert hp["image_size"] == 64


def test_image_size_must_fit_the_conv_blocks():
    with pytest.raises(TrainerError, match="image_size: must be at least 16 for 4 conv blocks, got 8"):
        validate(
            "image_classification",
            {"channels": [4, 4, 4, 4], "image_size": 8},
            schema={"image": "image", "label": "categorical"},
            target="label",
        )


def test_text_trainer_needs_a_text_column():
    with pytest.raises(TrainerError) as caught:
        validate("text_classification", schema=IRIS_SCHEMA, target="species")
    assert caught.value.code == "no_features"
    assert "text_classification needs a text column" in caught.value.message
    schema = {"body": "text", "topic": "categorical"}
    with pytest.raises(TrainerError, match="text_column 'bdy' is not a column; columns: body, topic"):
        validate("text_classification", {"text_column": "bdy"}, schema=schema, target="topic")
    with pytest.raises(TrainerError, match="text_column 'topic' is a categorical column and the target"):
        validate("text_classification", {"text_column": "topic"}, schema=schema, target="topic")
    assert (
        validate("text_classification", {"text_column": "body"}, schema=schema, target="topic")["text_column"]
        == "body"
    )


def test_hyperparameter_coercion_rules():
    flag = Hyperparameter("flag", "bool", False)
    assert [flag.coerce(value) for value in (True, "yes", "0", 1)] == [True, True, False, True]
    with pytest.raises(TrainerError, match="flag: expected true or false, got 'maybe'"):
        flag.coerce("maybe")
    optional = Hyperparameter("patience", "int", None, min=1, optional=True)
    assert optional.coerce(None) is None
    assert optional.coerce("") is None
    with pytest.raises(TrainerError, match="patience: must be at least 1, got 0"):
        optional.coerce(0)
    with pytest.raises(ValueError, match="unknown hyperparameter type"):
        Hyperparameter("x", "list", [])
