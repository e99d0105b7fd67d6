"""Hyperparameters shared by the built-in trainers (what the Train form shows)."""

from __future__ import annotations

from training.trainers.base import Hyperparameter

SEED = Hyperparameter(
    "seed",
    "int",
    None,
    min=0,
    max=2**31 - 1,
    optional=True,
    help="Random seed for the split, initialization and shuffling; empty uses the job's seed.",
)
VALIDATION_FRACTION = Hyperparameter(
    "validation_fraction",
    "float",
    0.2,
    min=0.05,
    max=0.5,
    help="Share of the rows held out for validation (stratified by class for classification).",
)
MAX_CATEGORIES = Hyperparameter(
    "max_categories",
    "int",
    20,
    min=1,
    max=1000,
    help="One-hot encode at most this many most frequent values per categorical column; others are zeros.",
)


def torch_loop(*, epochs: int, batch_size: int, lr: float, dropout: float) -> list[Hyperparameter]:
    return [
        Hyperparameter("epochs", "int", epochs, min=1, max=10_000, help="Passes over the training rows."),
        Hyperparameter("batch_size", "int", batch_size, min=1, max=65_536, help="Rows per optimizer step."),
        Hyperparameter("lr", "float", lr, min=1e-7, max=10.0, help="AdamW learning rate (at epoch 1)."),
        Hyperparameter(
            "lr_schedule",
            "str",
            "cosine",
            choices=("constant", "cosine"),
            help="cosine: decay the learning rate towards 0 over the epochs; constant: keep it.",
        ),
        Hyperparameter("weight_decay", "float", 1e-4, min=0.0, max=1.0, help="AdamW weight decay."),
        Hyperparameter("dropout", "float", dropout, min=0.0, max=0.9, help="Dropout probability."),
        Hyperparameter(
            "early_stopping_patience",
            "int",
            None,
            min=1,
            max=10_000,
            optional=True,
            help="Stop after this many epochs without a lower validation loss and keep the best "
            "epoch's weights; empty trains all epochs.",
        ),
        VALIDATION_FRACTION,
        SEED,
    ]
