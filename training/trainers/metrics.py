"""Validation metrics from numpy arrays, shared by the torch and scikit-learn trainers."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, class_count: int) -> np.ndarray:
    """Return counts [true class, predicted class]."""
    matrix = np.zeros((class_count, class_count), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def classification_metrics(matrix: np.ndarray) -> dict[str, float]:
    """Return accuracy and macro F1 (over the classes present in the truth or the predictions, as
    scikit-learn's f1_score(average="macro") does)."""
    total = matrix.sum()
    true_positive = np.diag(matrix).astype(np.float64)
    false_positive = matrix.sum(axis=0) - true_positive
    false_negative = matrix.sum(axis=1) - true_positive
    denominator = 2 * true_positive + false_positive + false_negative
    present = denominator > 0
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros_like(true_positive), where=present)
    return {
        "accuracy": float(true_positive.sum() / total) if total else 0.0,
        "f1": float(f1[present].mean()) if present.any() else 0.0,
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    error = y_pred - y_true
    total = float(((y_true - y_true.mean()) ** 2).sum())
    residual = float((error**2).sum())
    # scikit-learn's r2_score: 1.0 for a perfect fit of a constant target, 0.0 otherwise.
    r2 = 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    return {
        "rmse": float(np.sqrt((error**2).mean())),
        "mae": float(np.abs(error).mean()),
        "r2": float(r2),
    }


def confusion_payload(matrix: np.ndarray, labels: list) -> dict:
    return {"labels": [str(label) for label in labels], "matrix": matrix.tolist()}
