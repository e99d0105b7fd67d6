"""Small real datasets (scikit-learn's bundled ones, generated text) written as dataset versions:
a Parquet file, a schema and, for images, a files directory of PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn import datasets as sklearn_datasets

from training.trainers.base import TrainingData

SPORT = ["football", "goal", "match", "striker", "referee", "league", "stadium", "coach", "season", "team"]
BAKING = ["recipe", "oven", "flour", "sugar", "bake", "butter", "dough", "kitchen", "chocolate", "cake"]


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    torch.set_num_threads(1)


def _write(directory: Path, name: str, frame: pd.DataFrame, schema: dict, files_dir: Path | None = None):
    path = directory / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return TrainingData(parquet_path=path, schema=schema, files_dir=files_dir)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("datasets")


@pytest.fixture(scope="session")
def iris(data_dir) -> TrainingData:
    bunch = sklearn_datasets.load_iris(as_frame=True)
    frame = bunch.frame.rename(columns=lambda name: name.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = [bunch.target_names[number] for number in frame.pop("target")]
    schema = {name: "numeric" for name in frame.columns if name != "species"} | {"species": "categorical"}
    return _write(data_dir, "iris", frame, schema)


@pytest.fixture(scope="session")
def wine(data_dir) -> TrainingData:
    frame = sklearn_datasets.load_wine(as_frame=True).frame
    schema = {name: "numeric" for name in frame.columns}
    return _write(data_dir, "wine", frame, schema)


@pytest.fixture(scope="session")
def breast_cancer(data_dir) -> TrainingData:
    frame = sklearn_datasets.load_breast_cancer(as_frame=True).frame
    frame.columns = [name.replace(" ", "_") for name in frame.columns]
    frame["malignant"] = frame.pop("target") == 0
    schema = {name: "numeric" for name in frame.columns if name != "malignant"} | {"malignant": "boolean"}
    return _write(data_dir, "breast_cancer", frame, schema)


@pytest.fixture(scope="session")
def diabetes(data_dir) -> TrainingData:
    frame = sklearn_datasets.load_diabetes(as_frame=True, scaled=False).frame
    frame = frame.rename(columns={"target": "progression"})
    schema = {name: "numeric" for name in frame.columns}
    return _write(data_dir, "diabetes", frame, schema)


@pytest.fixture(scope="session")
def customers(data_dir) -> TrainingData:
    """Every column type, with missing values: numeric, categorical, boolean, text, datetime."""
    rng = np.random.default_rng(7)
    rows = 300
    plan = rng.choice(["basic", "plus", "pro", "enterprise"], rows, p=[0.4, 0.3, 0.2, 0.1])
    tenure = rng.integers(1, 60, rows).astype(float)
    spend = rng.gamma(2.0, 30.0, rows)
    autopay = rng.random(rows) < 0.5
    score = -0.08 * tenure + 0.02 * spend + np.where(plan == "basic", 1.0, -0.5) - 1.2 * autopay
    churned = np.where(score + rng.normal(0, 0.5, rows) > 0, "yes", "no")
    frame = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_spend": spend,
            "plan": pd.Series(plan, dtype=object),
            "autopay": pd.Series(autopay, dtype=object),
            "notes": [
                f"customer called about invoice number {number} and asked many questions"
                for number in range(rows)
            ],
            "signup": pd.date_range("2020-01-01", periods=rows, freq="D"),
            "churned": churned,
        }
    )
    frame.loc[::17, "monthly_spend"] = np.nan
    frame.loc[::23, "plan"] = None
    frame.loc[::29, "autopay"] = None
    schema = {
        "tenure_months": "numeric",
        "monthly_spend": "numeric",
        "plan": "categorical",
        "autopay": "boolean",
        "notes": "text",
        "signup": "datetime",
        "churned": "categorical",
    }
    return _write(data_dir, "customers", frame, schema)


@pytest.fixture(scope="session")
def digits(data_dir) -> TrainingData:
    """load_digits as an image dataset version: 8x8 PNGs in class folders + image/label/width/height."""
    bunch = sklearn_datasets.load_digits()
    files_dir = data_dir / "digits_files"
    rows = []
    for number, (pixels, label) in enumerate(zip(bunch.images[:500], bunch.target[:500], strict=True)):
        relative = f"{label}/{number}.png"
        (files_dir / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * 16).clip(0, 255).astype(np.uint8)).save(files_dir / relative)
        rows.append({"image": relative, "label": str(label), "width": 8, "height": 8})
    schema = {"image": "image", "label": "categorical", "width": "numeric", "height": "numeric"}
    return _write(data_dir, "digits", pd.DataFrame(rows), schema, files_dir)


def topic_texts(count: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(count):
        sport = number % 2 == 0
        words = rng.choice(SPORT if sport else BAKING, 8)
        rows.append({"body": " ".join(words), "topic": "sport" if sport else "baking"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def topics(data_dir) -> TrainingData:
    return _write(data_dir, "topics", topic_texts(120, seed=3), {"body": "text", "topic": "categorical"})
