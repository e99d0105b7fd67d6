"""The image trainer on load_digits written as 8x8 PNGs in class folders."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from training.trainers import TrainerError, TrainingData, get_trainer, load_model, predict
from training.trainers.recording import RecordingContext

SMALL = {"image_size": 16, "channels": [8, 16], "num_workers": 0, "lr": 0.02, "batch_size": 16}


def fit(data, context, **hyperparameters):
    return get_trainer("image_classification").fit(
        data, target=None, hyperparameters=SMALL | hyperparameters, context=context
    )


def test_learns_digits_and_writes_a_servable_model(digits, tmp_path):
    # given / when
    context = RecordingContext(tmp_path, seed=0)
    final = fit(digits, context, epochs=12, augment_flip=False)
    # then
    assert [step for step, _ in context.metrics] == list(range(1, 13))
    assert final["val_accuracy"] > 0.75
    _, confusion = context.debug_of("confusion_matrix")[-1]
    assert confusion["labels"] == [str(digit) for digit in range(10)]
    assert np.array(confusion["matrix"]).sum() == 100
    layers = context.debug_of("gradient_norms")[-1][1]
    assert list(layers) == [
        "features.block1.conv",
        "features.block1.norm",
        "features.block2.conv",
        "features.block2.norm",
        "output",
    ]
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["inputs"] == [{"name": "image", "type": "image"}]
    assert card["labels"] == [str(digit) for digit in range(10)]
    assert card["preprocessing"]["image_size"] == 16
    assert card["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    assert card["architecture"]["channels"] == [8, 16]
    assert card["torchscript"]["input_shape"] == [-1, 3, 16, 16]

    # predict from paths (relative to the files directory) and from bytes
    frame = pd.read_parquet(digits.parquet_path).head(40)
    model = load_model(tmp_path)
    by_path = predict(model, frame, files_dir=digits.files_dir)
    assert np.mean(np.array(by_path["predictions"]) == frame["label"].to_numpy()) > 0.75
    encoded = [(digits.files_dir / relative).read_bytes() for relative in frame["image"]]
    by_bytes = predict(model, [{"image": data} for data in encoded])
    assert by_bytes["predictions"] == by_path["predictions"]
    # the TorchScript file gives the same probabilities from the preprocessed tensor
    from training.trainers.image_data import image_tensor

    batch = torch.stack([image_tensor(Image.open(io.BytesIO(data)), 16) for data in encoded])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(tmp_path / "model.torchscript.pt"))
    probabilities = torch.softmax(scripted(batch), 1).detach().numpy()
    np.testing.assert_allclose(probabilities, by_path["probabilities"], atol=1e-5)


def test_resume_with_augmentation_and_batch_norm_matches(digits, tmp_path):
    hyperparameters = {"epochs": 3, "augment_flip": True, "dropout": 0.3}
    straight = RecordingContext(tmp_path / "straight", seed=5)
    expected = fit(digits, straight, **hyperparameters)
    first = RecordingContext(
        tmp_path / "resumed", seed=5, stop_when=lambda context: len(context.checkpoint_epochs) >= 2
    )
    fit(digits, first, **hyperparameters)
    second = RecordingContext(tmp_path / "resumed", seed=5)
    second.resume_from(first)
    resumed = fit(digits, second, **hyperparameters)
    combined = first.metrics + second.metrics
    assert [step for step, _ in combined] == [1, 2, 3]
    for (_, got), (_, want) in zip(combined, straight.metrics, strict=True):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert resumed == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_loader_worker_processes(digits, tmp_path):
    final = fit(digits, RecordingContext(tmp_path, seed=0), epochs=1, num_workers=2)
    assert 0.0 <= final["val_accuracy"] <= 1.0
    assert (tmp_path / "model.safetensors").is_file()


def test_a_split_column_decides_the_validation_rows(digits, tmp_path):
    frame = pd.read_parquet(digits.parquet_path)
    frame["split"] = np.where(np.arange(len(frame)) % 5 == 0, "test", "train")
    path = tmp_path / "split.parquet"
    frame.to_parquet(path)
    data = TrainingData(path, digits.schema | {"split": "categorical"}, digits.files_dir)
    fit(data, RecordingContext(tmp_path / "model", seed=0), epochs=1)
    training = json.loads((tmp_path / "model" / "model.json").read_text())["training"]
    assert training["split"] == "column"
    assert (training["rows_train"], training["rows_validation"]) == (400, 100)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("7/does-not-exist.png", "1 files named in column 'image' are missing (e.g. '7/does-not-exist.png')"),
        ("../../../etc/passwd", "image path '../../../etc/passwd' points outside the dataset's files"),
    ],
)
def test_bad_image_paths(digits, tmp_path, image, message):
    frame = pd.read_parquet(digits.parquet_path).head(20)
    frame.loc[3, "image"] = image
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    with pytest.raises(TrainerError) as caught:
        fit(TrainingData(path, digits.schema, digits.files_dir), RecordingContext(tmp_path / "m"), epochs=1)
    assert message in caught.value.message


def test_an_image_dataset_needs_its_files(digits, tmp_path):
    with pytest.raises(TrainerError, match="no image files directory"):
        fit(TrainingData(digits.parquet_path, digits.schema, None), RecordingContext(tmp_path), epochs=1)
