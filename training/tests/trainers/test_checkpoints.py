"""Checkpoint state round-trips through safetensors + JSON (what the runner stores), never pickle."""

from __future__ import annotations

import pytest
import torch

from training.trainers.checkpoints import load_state, save_state, state_from_bytes, state_to_bytes
from training.trainers.recording import RecordingContext


def test_state_round_trips_through_safe_files(tmp_path):
    state = {
        "model/weight": torch.randn(3, 2),
        "optimizer/0/step": torch.tensor(7.0),
        "rng/cpu": torch.get_rng_state(),
        "loop": {"epoch": 3, "best_val_loss": None, "last_metrics": {"val_loss": 0.5}},
        "fingerprint": {"hidden_layers": [64, 32]},
    }
    save_state(state, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint.json", "checkpoint.safetensors"]
    restored = load_state(tmp_path)
    assert restored.keys() == state.keys()
    torch.testing.assert_close(restored["model/weight"], state["model/weight"])
    assert torch.equal(restored["rng/cpu"], state["rng/cpu"])
    assert restored["loop"] == state["loop"]
    assert load_state(tmp_path / "none") is None


def test_values_that_json_cannot_hold_are_refused_early():
    with pytest.raises(TypeError):
        state_to_bytes({"model": object()})
    with pytest.raises(ValueError, match="Out of range float"):
        state_to_bytes({"loss": float("nan")})
    tensors, meta = state_to_bytes({"x": torch.ones(2)})
    assert torch.equal(state_from_bytes(tensors, meta)["x"], torch.ones(2))


def test_recording_context_keeps_the_last_checkpoint(tmp_path):
    context = RecordingContext(tmp_path)
    assert context.load_checkpoint() is None
    context.save_checkpoint({"x": torch.zeros(1), "epoch_note": "one"}, epoch=1)
    context.save_checkpoint({"x": torch.ones(1), "epoch_note": "two"}, epoch=2)
    state, epoch = context.load_checkpoint()
    assert epoch == 2
    assert state["epoch_note"] == "two"
    assert context.checkpoint_epochs == [1, 2]


def test_recording_context_implements_the_trainer_context_protocol(tmp_path):
    from training.trainers import TrainerContext

    assert isinstance(RecordingContext(tmp_path), TrainerContext)


def test_a_real_checkpoint_also_loads_with_torch_load_weights_only(iris, tmp_path):
    # The state holds only tensors and JSON values, so a runner that stores it with torch.save can read
    # it back with weights_only=True (no arbitrary unpickling); safetensors + JSON is the pickle-free way.
    from training.trainers import get_trainer

    hyperparameters = {"epochs": 2, "hidden_layers": [8]}
    first = RecordingContext(tmp_path / "a", seed=0)
    get_trainer("tabular_classification").fit(
        iris, target="species", hyperparameters=hyperparameters, context=first
    )
    state, epoch = first.load_checkpoint()
    torch.save({"state": state, "epoch": epoch}, tmp_path / "last.pt")
    saved = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=True)
    second = RecordingContext(tmp_path / "b", seed=0)
    second.load_checkpoint = lambda: (saved["state"], saved["epoch"])
    final = get_trainer("tabular_classification").fit(
        iris, target="species", hyperparameters=hyperparameters, context=second
    )
    assert second.metrics == []  # nothing left to train
    assert final["epochs_completed"] == 2
