from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training.trainers import TrainerError
from training.trainers.preprocessing import (
    MAX_CLASSES,
    TabularPreprocessor,
    category_key,
    encode_target,
    split_rows,
    tabular_columns,
)
from training.trainers.sklearn_baselines import build_pipeline, fitted_preprocessing, sklearn_frame


def test_category_keys_treat_equal_values_alike():
    assert [category_key(value) for value in (1, 1.0, "1", np.int64(1), np.float32(1.0))] == ["1"] * 5
    assert [category_key(value) for value in (None, float("nan"), pd.NA, "")] == [None] * 4
    assert [category_key(value) for value in (True, np.bool_(False), 2.5, "red")] == [
        "True",
        "False",
        "2.5",
        "red",
    ]


def test_tabular_columns_drop_text_datetime_and_image_with_reasons():
    schema = {
        "a": "numeric",
        "b": "categorical",
        "c": "boolean",
        "d": "text",
        "e": "datetime",
        "f": "image",
        "y": "numeric",
    }
    used, dropped = tabular_columns(schema, "y")
    assert used == {"a": "numeric", "b": "categorical", "c": "boolean"}
    assert [(column["name"], column["type"]) for column in dropped] == [
        ("d", "text"),
        ("e", "datetime"),
        ("f", "image"),
    ]
    assert "text_classification" in dropped[0]["reason"]


def test_preprocessor_standardizes_one_hot_encodes_and_survives_json():
    # given
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 5.0],
            "color": ["red", "blue", "red", None],
            "flag": [True, False, True, True],
            "same": [3.0, 3.0, 3.0, 3.0],
        }
    )
    columns = {"x": "numeric", "color": "categorical", "flag": "boolean", "same": "numeric"}
    # when
    preprocessor = TabularPreprocessor.fit(frame, columns, max_categories=20)
    restored = TabularPreprocessor(json.loads(json.dumps(preprocessor.spec)))
    features = restored.transform(
        [{"x": None, "color": "green", "flag": False, "same": 3}, {"x": 2.0, "color": "red"}]
    )
    # then: mean 8/3 over observed values; the missing value is imputed before scaling (sklearn's order)
    x = preprocessor.columns[0]
    assert x["mean"] == pytest.approx(8 / 3)
    assert x["std"] == pytest.approx(np.std([1.0, 2.0, 8 / 3, 5.0]))
    assert preprocessor.columns[1]["categories"] == ["red", "blue"]
    assert preprocessor.columns[2]["categories"] == ["True", "False"]
    assert preprocessor.columns[3]["std"] == 1.0  # a constant column is not divided by zero
    assert restored.feature_names == ["x", "color=red", "color=blue", "flag=True", "flag=False", "same"]
    assert features.dtype == np.float32
    np.testing.assert_allclose(
        features[0], [0.0, 0, 0, 0, 1, 0], atol=1e-6
    )  # missing -> mean -> 0; unseen -> zeros
    np.testing.assert_allclose(
        features[1], [(2 - 8 / 3) / x["std"], 1, 0, 0, 0, 0], atol=1e-6
    )  # absent column -> zeros


def test_top_k_categories_by_frequency_then_value():
    frame = pd.DataFrame({"city": ["b", "a", "c", "c", "a", "d"]})
    preprocessor = TabularPreprocessor.fit(frame, {"city": "categorical"}, max_categories=2)
    assert preprocessor.columns[0]["categories"] == ["a", "c"]
    assert preprocessor.columns[0]["other_values"] == 2
    np.testing.assert_array_equal(
        preprocessor.transform(pd.DataFrame({"city": ["b", "c"]})), [[0, 0], [0, 1]]
    )


def test_an_empty_training_column_is_dropped_and_no_columns_at_all_is_an_error():
    frame = pd.DataFrame({"x": [np.nan, np.nan], "y": [1.0, 2.0]})
    preprocessor = TabularPreprocessor.fit(frame, {"x": "numeric", "y": "numeric"}, max_categories=5)
    assert [column["name"] for column in preprocessor.columns] == ["y"]
    assert preprocessor.spec["dropped"][0]["name"] == "x"
    with pytest.raises(TrainerError, match="every feature column is empty"):
        TabularPreprocessor.fit(frame, {"x": "numeric"}, max_categories=5)


def test_scikit_learn_pipeline_learns_the_same_preprocessing(customers):
    # given the customers table (missing numbers, missing categories)
    frame = pd.read_parquet(customers.parquet_path)
    columns, _ = tabular_columns(customers.schema, "churned")
    plan = TabularPreprocessor.fit(frame, columns, max_categories=3)
    # when scikit-learn fits the ColumnTransformer built from the plan
    pipeline = build_pipeline(plan.columns, estimator="passthrough")
    features = sklearn_frame(frame, plan.columns)
    pipeline.fit(features)
    # then the recorded parameters and the transformed matrices agree
    recorded = fitted_preprocessing(pipeline, plan)
    for ours, theirs in zip(plan.columns, recorded["columns"], strict=True):
        if ours["encoding"] == "standardize":
            assert theirs["mean"] == pytest.approx(ours["mean"], rel=1e-9)
            assert theirs["std"] == pytest.approx(ours["std"], rel=1e-9)
    np.testing.assert_allclose(pipeline.transform(features), plan.transform(frame), atol=1e-5)


def test_class_labels_are_sorted_and_rows_without_a_target_dropped():
    targets = encode_target(pd.Series(["b", None, "a", "b", ""]), task="classification", name="y")
    assert targets.labels == ["a", "b"]
    np.testing.assert_array_equal(targets.rows, [0, 2, 3])
    np.testing.assert_array_equal(targets.values, [1, 0, 1])
    numeric = encode_target(pd.Series([2, 10, 1]), task="classification", name="y")
    assert numeric.labels == [1, 2, 10]
    assert all(type(label) is int for label in numeric.labels)


@pytest.mark.parametrize(
    ("series", "task", "message"),
    [
        (
            pd.Series(["a", "a", None]),
            "classification",
            "target 'y' has only 'a'; classification needs at least 2",
        ),
        (pd.Series([None, None]), "classification", "target 'y' has no values"),
        (pd.Series(range(MAX_CLASSES + 1)), "classification", "1,001 distinct values"),
        (pd.Series(["x", "y", "z"]), "regression", "target 'y' has 0 numeric values"),
    ],
)
def test_targets_that_cannot_be_learned(series, task, message):
    with pytest.raises(TrainerError, match=message):
        encode_target(series, task=task, name="y")


def test_random_split_is_stratified_and_seeded():
    targets = np.array([0] * 50 + [1] * 10 + [2] * 1)
    train, validation, how = split_rows(targets, task="classification", validation_fraction=0.2, seed=4)
    assert how == "random"
    assert np.bincount(targets[validation], minlength=3).tolist() == [
        10,
        2,
        0,
    ]  # a singleton class stays in train
    assert sorted([*train, *validation]) == list(range(len(targets)))
    again = split_rows(targets, task="classification", validation_fraction=0.2, seed=4)
    np.testing.assert_array_equal(again[1], validation)
    other = split_rows(targets, task="classification", validation_fraction=0.2, seed=5)
    assert not np.array_equal(other[1], validation)


def test_split_column_wins_when_it_has_both_sides():
    targets = np.array([0, 1, 0, 1])
    train, validation, how = split_rows(
        targets,
        task="classification",
        validation_fraction=0.2,
        seed=0,
        split_values=np.array(["train", "test", "train", "val"]),
    )
    assert how == "column"
    assert train.tolist() == [0, 2]
    assert validation.tolist() == [1, 3]
    _, _, how = split_rows(
        targets, task="classification", validation_fraction=0.5, seed=0, split_values=np.array(["train"] * 4)
    )
    assert how == "random"


def test_too_few_rows_to_split():
    with pytest.raises(TrainerError, match="at least 2 rows"):
        split_rows(np.array([1.0]), task="regression", validation_fraction=0.2, seed=0)
