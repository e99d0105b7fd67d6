"""Checkpoint state as safe files: tensors in safetensors, everything else in JSON.

A trainer hands `TrainerContext.save_checkpoint` a flat dict whose values are either tensors or
JSON-ready values (numbers, strings, booleans, None, lists and dicts of those). Nothing needs pickle, so
a runner stores it with `save_state` / `state_to_bytes` and reads it back with `load_state` /
`state_from_bytes` (safetensors + json), never with `torch.load` on a file a user could have touched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

TENSOR_SUFFIX = ".safetensors"
META_SUFFIX = ".json"


def split_state(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            tensors[key] = value.detach().to("cpu").contiguous().clone()
        else:
            meta[key] = value
    json.dumps(meta, allow_nan=False)  # fail here, not when the runner stores it
    return tensors, meta


def state_to_bytes(state: dict) -> tuple[bytes, bytes]:
    tensors, meta = split_state(state)
    return safetensors_save(tensors), json.dumps(meta, allow_nan=False).encode()


def state_from_bytes(tensor_bytes: bytes, meta_bytes: bytes) -> dict:
    state = dict(json.loads(meta_bytes))
    state.update(safetensors_load(tensor_bytes))
    return state


def save_state(state: dict, directory: Path, name: str = "checkpoint") -> None:
    """Write `<name>.safetensors` and `<name>.json` atomically (a crash leaves the previous pair)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensor_bytes, meta_bytes = state_to_bytes(state)
    for suffix, payload in ((TENSOR_SUFFIX, tensor_bytes), (META_SUFFIX, meta_bytes)):
        temporary = directory / f".{name}{suffix}.tmp"
        temporary.write_bytes(payload)
        os.replace(temporary, directory / f"{name}{suffix}")


def load_state(directory: Path, name: str = "checkpoint") -> dict | None:
    directory = Path(directory)
    tensor_path, meta_path = directory / f"{name}{TENSOR_SUFFIX}", directory / f"{name}{META_SUFFIX}"
    if not (tensor_path.is_file() and meta_path.is_file()):
        return None
    return state_from_bytes(tensor_path.read_bytes(), meta_path.read_bytes())


def pack_module(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{key}": value for key, value in module.state_dict().items()}


def unpack_module(prefix: str, state: dict) -> dict[str, torch.Tensor]:
    start = f"{prefix}/"
    return {key[len(start) :]: value for key, value in state.items() if key.startswith(start)}


def pack_optimizer(optimizer: torch.optim.Optimizer) -> dict:
    """Flatten an optimizer's per-parameter state; param groups are rebuilt from the hyperparameters."""
    packed: dict = {}
    scalars: dict = {}
    for index, values in optimizer.state_dict()["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                packed[f"optimizer/{index}/{key}"] = value
            else:
                scalars[f"{index}/{key}"] = value
    packed["optimizer_scalars"] = scalars
    return packed


def unpack_optimizer(optimizer: torch.optim.Optimizer, state: dict) -> None:
    per_parameter: dict[int, dict] = {}
    for key, value in state.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            per_parameter.setdefault(int(index), {})[name] = value
    for key, value in state.get("optimizer_scalars", {}).items():
        index, name = key.split("/", 1)
        per_parameter.setdefault(int(index), {})[name] = value
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": per_parameter, "param_groups": current["param_groups"]})
