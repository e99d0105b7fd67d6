"""Model artifacts: write them after training, load them for serving without unpickling anything.

Every built-in trainer leaves in its output directory a `model.json` model card and:
- torch trainers: `model.safetensors` (the network's state dict) and `model.torchscript.pt` (a traced
  module taking the already-preprocessed float tensor; see the card's "torchscript" entry);
- scikit-learn trainers: `model.onnx` (preprocessing + estimator in one graph, one input per column).

`load_model` rebuilds a model from model.json + safetensors (or model.onnx) only: never torch.load, never
pickle, so a model file a user uploaded cannot run code. `predict` runs it on rows (dicts or a
DataFrame) of raw column values, applying the recorded preprocessing.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CARD_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
TORCHSCRIPT_FILE = "model.torchscript.pt"
ONNX_FILE = "model.onnx"
CARD_FORMAT = 1


def write_card(output_dir: Path, card: dict) -> Path:
    path = Path(output_dir) / CARD_FILE
    temporary = path.with_name(f".{CARD_FILE}.tmp")
    temporary.write_text(json.dumps({"format_version": CARD_FORMAT, **card}, indent=2, allow_nan=False))
    os.replace(temporary, path)
    return path


def write_torch_model(output_dir: Path, *, model, export_module, example_input, card: dict) -> None:
    """Write weights (safetensors), a TorchScript trace of `export_module` (on CPU) and the card."""
    import torch
    from safetensors.torch import save_file

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    weights = {
        key: value.detach().to("cpu").contiguous().clone() for key, value in model.state_dict().items()
    }
    save_file(weights, str(output_dir / WEIGHTS_FILE), metadata={"format": "pt"})
    portable = copy.deepcopy(export_module).to("cpu").eval()
    with warnings.catch_warnings():
        # torch 2.10+ deprecates TorchScript in favour of torch.export; it still works, and the brief
        # asks for a TorchScript file beside the safetensors weights (which serving uses).
        warnings.simplefilter("ignore", DeprecationWarning)
        with torch.no_grad():
            traced = torch.jit.trace(portable, example_input.to("cpu"))
        torch.jit.save(traced, str(output_dir / TORCHSCRIPT_FILE))
    files = {"weights": WEIGHTS_FILE, "torchscript": TORCHSCRIPT_FILE}
    write_card(output_dir, {**card, "files": files})


@dataclass
class LoadedModel:
    directory: Path
    card: dict
    module: Any = None  # torch.nn.Module (torch trainers)
    session: Any = None  # onnxruntime.InferenceSession (scikit-learn trainers)
    preprocessor: Any = None  # TabularPreprocessor (tabular trainers)

    @property
    def task(self) -> str:
        return self.card["task"]

    @property
    def labels(self) -> list | None:
        return self.card.get("labels")

    def predict(self, rows: list[dict] | pd.DataFrame, *, files_dir: Path | None = None) -> dict:
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        if self.session is not None:
            return self._predict_onnx(frame)
        import torch

        features = self._features(frame, files_dir)
        with torch.no_grad():
            output = self.module(features)
        if self.task == "classification":
            return self._classes(torch.softmax(output, dim=1).numpy())
        scaling = self.card["target_scaling"]
        values = output.squeeze(-1).double().numpy() * scaling["std"] + scaling["mean"]
        return {"predictions": values.tolist()}

    def _features(self, frame: pd.DataFrame, files_dir: Path | None):
        import torch

        kind = self.card["data_kind"]
        if kind == "tabular":
            return torch.from_numpy(self.preprocessor.transform(frame))
        if kind == "image":
            from training.trainers.image_data import image_tensor

            column = self.card["image_column"]
            size = self.card["preprocessing"]["image_size"]
            return torch.stack([image_tensor(value, size, files_dir=files_dir) for value in frame[column]])
        if kind == "text":
            from training.trainers.text import embed_frame

            embedding = self.card["preprocessing"]["embedding"]
            return torch.from_numpy(embed_frame(frame, self.card["text_columns"], embedding, device="cpu"))
        raise ValueError(f"unknown data kind {kind!r}")

    def _classes(self, probabilities: np.ndarray) -> dict:
        labels = self.labels
        return {
            "predictions": [labels[index] for index in probabilities.argmax(axis=1)],
            "probabilities": probabilities.astype(np.float64).tolist(),
            "labels": labels,
        }

    def _predict_onnx(self, frame: pd.DataFrame) -> dict:
        from training.trainers.preprocessing import category_key

        rows = len(frame)
        feed = {}
        for entry in self.card["onnx_inputs"]:
            series = frame[entry["column"]] if entry["column"] in frame else pd.Series([None] * rows)
            if entry["type"] == "float":
                values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float32)
                values = np.where(np.isfinite(values), values, np.nan).astype(np.float32)
            else:
                values = np.array([category_key(value) or "" for value in series.tolist()], dtype=object)
            feed[entry["input"]] = values.reshape(-1, 1)
        outputs = self.session.run(None, feed)
        if self.task == "classification":
            return self._classes(np.asarray(outputs[1]))
        return {"predictions": np.asarray(outputs[0], dtype=np.float64).reshape(-1).tolist()}


def load_model(model_dir: Path | str) -> LoadedModel:
    """Rebuild a built-in trainer's model from its directory (model.json + safetensors or ONNX)."""
    directory = Path(model_dir)
    card = json.loads((directory / CARD_FILE).read_text())
    if card.get("format_version") != CARD_FORMAT:
        raise ValueError(f"unsupported model card format {card.get('format_version')!r}")
    files = card.get("files", {})
    if "onnx" in files:
        import onnxruntime

        session = onnxruntime.InferenceSession(
            str(directory / files["onnx"]), providers=["CPUExecutionProvider"]
        )
        return LoadedModel(directory, card, session=session)
    from safetensors.torch import load_file

    from training.trainers.modules import build_module
    from training.trainers.preprocessing import TabularPreprocessor

    module = build_module(card["architecture"])
    module.load_state_dict(load_file(str(directory / files["weights"])), strict=True)
    module.eval()
    preprocessor = TabularPreprocessor(card["preprocessing"]) if card["data_kind"] == "tabular" else None
    return LoadedModel(directory, card, module=module, preprocessor=preprocessor)


def predict(
    model: LoadedModel | Path | str, rows: list[dict] | pd.DataFrame, *, files_dir: Path | None = None
) -> dict:
    """Predict raw rows: {"predictions": [...]} plus "probabilities" and "labels" for classifiers.

    Load once with `load_model` and pass the LoadedModel when predicting repeatedly.
    """
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    return loaded.predict(rows, files_dir=files_dir)
