"""What the torch trainers share around the epoch loop: seeding, running it, the model card, the files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.trainers.artifacts import write_torch_model
from training.trainers.base import Trainer, TrainerContext
from training.trainers.loop import LoopConfig, train
from training.trainers.preprocessing import Targets


@dataclass
class Prepared:
    """Targets and split of one dataset, ready for the loop."""

    targets: Targets
    train_rows: np.ndarray
    validation_rows: np.ndarray
    split: str  # "random" | "column"
    target_mean: float = 0.0
    target_std: float = 1.0

    def target_tensor(self, task: str) -> torch.Tensor:
        if task == "classification":
            return torch.from_numpy(self.targets.values.astype(np.int64))
        scaled = (self.targets.values - self.target_mean) / self.target_std
        return torch.from_numpy(scaled.astype(np.float32))


def scale_regression(prepared: Prepared) -> None:
    values = prepared.targets.values[prepared.train_rows]
    prepared.target_mean = float(values.mean())
    std = float(values.std())
    prepared.target_std = std if std > 1e-12 else 1.0


def seed_everything(seed: int, device: torch.device) -> None:
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)


def loop_config(
    trainer: Trainer, hp: dict, *, seed: int, prepared: Prepared, fingerprint: dict, **extra
) -> LoopConfig:
    return LoopConfig(
        task=trainer.task,
        epochs=hp["epochs"],
        batch_size=hp["batch_size"],
        lr=hp["lr"],
        weight_decay=hp["weight_decay"],
        lr_schedule=hp["lr_schedule"],
        seed=seed,
        early_stopping_patience=hp["early_stopping_patience"],
        labels=prepared.targets.labels,
        target_mean=prepared.target_mean,
        target_std=prepared.target_std,
        fingerprint={"trainer": trainer.name, "hyperparameters": hp, "seed": seed, **fingerprint},
        **extra,
    )


def run(
    trainer: Trainer,
    *,
    model: torch.nn.Module,
    config: LoopConfig,
    train_set,
    validation_set,
    context: TrainerContext,
    prepared: Prepared,
    target: dict,
    hp: dict,
    card: dict,
    example_input: torch.Tensor,
    export_module: torch.nn.Module | None = None,
    torchscript_input: str,
) -> dict[str, float]:
    """Train, then (rank 0, not stopped) write model.safetensors, model.torchscript.pt and model.json."""
    result = train(model, config, train_set, validation_set, context)
    metrics = dict(result.metrics)
    if result.stopped:
        return metrics
    metrics["epochs_completed"] = float(result.epochs_completed)
    if config.early_stopping_patience is not None:
        metrics["best_epoch"] = float(result.best_epoch)
    if not result.is_main:
        return metrics
    context.progress(1.0, "writing the model")
    model.eval()
    classification = trainer.task == "classification"
    full_card = {
        "trainer": trainer.name,
        "title": trainer.title,
        "task": trainer.task,
        "data_kind": trainer.data_kind,
        "framework": "pytorch",
        "framework_version": torch.__version__.split("+")[0],
        "target": target,
        "labels": prepared.targets.labels if classification else None,
        **card,
        "hyperparameters": {**hp, "seed": config.seed},
        "metrics": metrics,
        "training": {
            "rows_train": int(len(prepared.train_rows)),
            "rows_validation": int(len(prepared.validation_rows)),
            "split": prepared.split,
            "epochs_completed": result.epochs_completed,
            "best_epoch": result.best_epoch or None,
            "device": context.device.type,
        },
        "outputs": (
            {"kind": "class_probabilities", "labels": prepared.targets.labels}
            if classification
            else {"kind": "value", "unit": "target"}
        ),
        "torchscript": {
            "input": torchscript_input,
            "input_shape": [-1, *example_input.shape[1:]],
            "input_dtype": "float32",
            "output": (
                "logits [batch, classes] in the order of `labels` (softmax for probabilities)"
                if classification
                else "predictions [batch] in target units"
            ),
        },
    }
    if not classification:
        full_card["target_scaling"] = {"mean": prepared.target_mean, "std": prepared.target_std}
    write_torch_model(
        context.output_dir,
        model=model,
        export_module=export_module or model,
        example_input=example_input,
        card=full_card,
    )
    return metrics
