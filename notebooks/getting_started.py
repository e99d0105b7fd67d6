"""The getting-started notebook put into each project's shared folder: the SDK from the first cell."""

import json

GETTING_STARTED_NAME = "getting-started.ipynb"


def _markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip()}


def _code(text: str) -> dict:
    return {
        "cell_type": "code",
        "metadata": {},
        "execution_count": None,
        "outputs": [],
        "source": text.strip(),
    }


CELLS = [
    _markdown(
        """
# Getting started

This server's kernel already knows the studio: `STUDIO_URL`, `STUDIO_TOKEN` (a short-lived token of
yours, scoped to this project) and `STUDIO_PROJECT` are set, so the client needs no arguments.
Files in `shared/` are the project's: every member sees them.
"""
    ),
    _code(
        """
import studio_sdk

client = studio_sdk.Client()
client.project
"""
    ),
    _markdown("## Load a dataset\nUpload a DataFrame as a new dataset version (Parquet on the server)."),
    _code(
        """
from sklearn.datasets import load_iris

iris = load_iris(as_frame=True)
frame = iris.frame.rename(columns=lambda name: name.replace(" (cm)", "").replace(" ", "_"))
frame["species"] = [iris.target_names[index] for index in frame.pop("target")]
version = client.datasets.upload(frame, name="iris")
version.to_pandas().head()
"""
    ),
    _markdown(
        "## Train here and log metrics\nA run records parameters and metrics live; see them under Runs."
    ),
    _code(
        """
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split

data = version.to_pandas()
features, target = data.drop(columns="species"), data["species"]
x_train, x_val, y_train, y_val = train_test_split(features, target, test_size=0.25, random_state=7)
model = SGDClassifier(loss="log_loss", random_state=7)
with client.runs.start(experiment="getting-started", params={"model": "SGDClassifier", "epochs": 10}) as run:
    for epoch in range(10):
        model.partial_fit(x_train, y_train, classes=sorted(target.unique()))
        run.log_metrics({"train_accuracy": model.score(x_train, y_train),
                         "val_accuracy": model.score(x_val, y_val)}, step=epoch)
run
"""
    ),
    _markdown(
        "## Submit a training job\nA built-in trainer runs on the studio's workers; `wait=True` follows it."
    ),
    _code(
        """
job = client.training.submit(
    trainer="tabular_classification",
    dataset=version,
    target="species",
    hyperparameters={"epochs": 5},
    experiment="getting-started",
    wait=True,
)
job.run.latest_metrics()
"""
    ),
]


def getting_started_notebook() -> str:
    notebook = {
        "cells": CELLS,
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for index, cell in enumerate(notebook["cells"]):
        cell["id"] = f"getting-started-{index}"
    return json.dumps(notebook, indent=1) + "\n"
