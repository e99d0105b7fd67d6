"""An in-memory TrainerContext: for tests and for the plain-script baseline in bench/.

Checkpoints go through the same safe serialization a runner uses (safetensors + JSON bytes), so a test
that resumes from one proves the state is plain tensors and numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from training.trainers.checkpoints import state_from_bytes, state_to_bytes


class RecordingContext:
    def __init__(
        self,
        output_dir: Path,
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
        stop_when: Callable[[RecordingContext], bool] | None = None,
    ):
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(device)
        self.seed = seed
        self.stop_when = stop_when
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.debug: list[tuple[str, dict, int]] = []
        self.progress_updates: list[tuple[float, str]] = []
        self.checkpoint_epochs: list[int] = []
        self.stop_checks = 0
        self._checkpoint: tuple[bytes, bytes, int] | None = None

    # TrainerContext

    def log_metrics(self, metrics: dict[str, float], *, step: int) -> None:
        self.metrics.append((step, dict(metrics)))

    def log_debug(self, kind: str, payload: dict, *, step: int) -> None:
        self.debug.append((kind, payload, step))

    def save_checkpoint(self, state: dict, *, epoch: int) -> None:
        tensor_bytes, meta_bytes = state_to_bytes(state)
        self._checkpoint = (tensor_bytes, meta_bytes, epoch)
        self.checkpoint_epochs.append(epoch)

    def load_checkpoint(self) -> tuple[dict, int] | None:
        if self._checkpoint is None:
            return None
        tensor_bytes, meta_bytes, epoch = self._checkpoint
        return state_from_bytes(tensor_bytes, meta_bytes), epoch

    def should_stop(self) -> bool:
        self.stop_checks += 1
        return bool(self.stop_when and self.stop_when(self))

    def progress(self, fraction: float, message: str = "") -> None:
        self.progress_updates.append((fraction, message))

    # Helpers for tests and benchmarks

    def resume_from(self, other: RecordingContext) -> None:
        """Start from `other`'s last checkpoint, as a redelivered job would."""
        self._checkpoint = other._checkpoint

    def history(self, key: str) -> list[tuple[int, float]]:
        return [(step, metrics[key]) for step, metrics in self.metrics if key in metrics]

    def debug_of(self, kind: str) -> list[tuple[int, dict]]:
        return [(step, payload) for debug_kind, payload, step in self.debug if debug_kind == kind]
