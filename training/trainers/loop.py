"""The epoch loop every torch trainer shares: metrics, debugger payloads, checkpoints, resume, DDP.

Determinism (what makes "stop after 3 epochs, resume to 6" equal a straight 6-epoch run): the shuffle
and the augmentation of epoch e come from generators seeded by (seed, epoch) rather than from the
global RNG; the global RNG (dropout) is saved in every checkpoint with the weights and the optimizer
state; the learning rate is a function of the epoch. A resumed run thus replays the same arithmetic.

Under torch.distributed (the runner starts torchrun and initializes the process group): the model is
wrapped in DistributedDataParallel, each rank trains on its DistributedSampler shard, rank 0 validates
on the whole validation set and broadcasts the metrics (so every rank takes the same early-stopping
decision), and only rank 0 logs, checkpoints and writes artifacts. A stop request or a NaN loss on any
rank stops them all (an all-reduce of two flags between batches).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from training.trainers.base import TrainerContext, TrainerError, TrainingDiverged
from training.trainers.checkpoints import pack_module, pack_optimizer, unpack_module, unpack_optimizer
from training.trainers.metrics import (
    classification_metrics,
    confusion_matrix,
    confusion_payload,
    regression_metrics,
)
from training.trainers.modules import layer_groups

CHECKPOINT_FORMAT = 1


class TensorDataset(Dataset):
    """Features and targets already in memory; a batch is one fancy-index, not a per-row collate."""

    def __init__(self, features: torch.Tensor, targets: torch.Tensor):
        self.features = features
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.features[index], self.targets[index]

    def __getitems__(self, indices: list[int]):
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.features[index], self.targets[index]


def keep_batch(batch):
    return batch


class EpochSampler(Sampler[int]):
    """A shuffle that depends only on (seed, epoch), like DistributedSampler on one process."""

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def _mix(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2**63)


@dataclass
class LoopConfig:
    task: str  # "classification" | "regression"
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    lr_schedule: str  # "constant" | "cosine"
    seed: int
    early_stopping_patience: int | None = None
    num_workers: int = 0
    labels: list | None = None
    target_mean: float = 0.0  # regression: the network learns (y - mean) / std
    target_std: float = 1.0
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    fingerprint: dict = field(default_factory=dict)  # what a checkpoint must match to be resumed

    def lr_at(self, epoch: int) -> float:
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / self.epochs))
        return self.lr


@dataclass
class LoopResult:
    metrics: dict[str, float]
    stopped: bool  # should_stop() ended it before the last epoch: no model should be written
    epochs_completed: int
    best_epoch: int
    is_main: bool  # rank 0 (or not distributed): the process that writes artifacts


@dataclass
class _Progress:
    epoch: int = 0
    best_val_loss: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    last_metrics: dict = field(default_factory=dict)
    best_metrics: dict = field(default_factory=dict)
    best_weights: dict | None = None
    finished: bool = False  # early stopping fired

    def meta(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "best_val_loss": self.best_val_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "last_metrics": self.last_metrics,
            "best_metrics": self.best_metrics,
            "finished": self.finished,
        }


class _Distributed:
    def __init__(self):
        self.enabled = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.enabled else 0
        self.world_size = dist.get_world_size() if self.enabled else 1
        self.is_main = self.rank == 0


def train(
    model: nn.Module,
    config: LoopConfig,
    train_set: Dataset,
    validation_set: Dataset,
    context: TrainerContext,
) -> LoopResult:
    """Train `model` in place (it ends with the final or, with early stopping, the best weights)."""
    device = context.device
    distributed = _Distributed()
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    progress = _Progress()
    checkpoint = context.load_checkpoint()
    if checkpoint is not None:
        progress = _restore(checkpoint, model, optimizer, config, device)
    network: nn.Module = model
    if distributed.enabled:
        network = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    loss_function = nn.CrossEntropyLoss() if config.task == "classification" else nn.MSELoss()
    if distributed.enabled:
        sampler: Sampler = DistributedSampler(
            train_set,
            num_replicas=distributed.world_size,
            rank=distributed.rank,
            shuffle=True,
            seed=config.seed,
        )
    else:
        sampler = EpochSampler(len(train_set), config.seed)
    train_loader = _loader(train_set, sampler, config, shuffle_seed=config.seed)
    validation_loader = _loader(
        validation_set,
        torch.utils.data.SequentialSampler(validation_set),
        config,
        shuffle_seed=config.seed,
        batch_size=max(config.batch_size, 256),
    )
    layer_names, parameters, owners = layer_groups(model)
    layer_of = torch.zeros(len(layer_names), len(parameters), dtype=torch.float64)
    layer_of[owners, list(range(len(parameters)))] = 1.0
    layer_of = layer_of.to(device)
    # Sync with the host (NaN check, stop flags) every batch on CPU, where it is free; less often on GPU.
    sync_every = 1 if device.type == "cpu" else 16

    for epoch in range(progress.epoch + 1, config.epochs + 1):
        if progress.finished:
            break
        lr = config.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        sampler.set_epoch(epoch)
        augment_generator = torch.Generator().manual_seed(_mix(config.seed, epoch, distributed.rank) + 1)
        network.train()
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        sample_count = 0
        norm_sum = torch.zeros(len(layer_names), device=device, dtype=torch.float64)
        batch_count = 0
        batches = len(train_loader)
        stopped = False
        for batch_number, (features, targets) in enumerate(train_loader, start=1):
            features = features.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if config.augment is not None:
                features = config.augment(features, augment_generator)
            optimizer.zero_grad(set_to_none=True)
            output = network(features)
            if config.task == "regression":
                output = output.squeeze(-1)
            loss = loss_function(output, targets)
            loss.backward()
            if distributed.is_main:
                norm_sum += _layer_norms(parameters, layer_of)
            optimizer.step()
            loss_sum += loss.detach().double() * len(targets)
            sample_count += len(targets)
            batch_count += 1
            if batch_number % sync_every == 0 or batch_number == batches:
                stop, diverged = _sync_flags(context.should_stop(), loss_sum, distributed, device)
                if diverged:
                    raise TrainingDiverged(
                        f"training diverged: the loss became NaN or infinite in epoch {epoch} "
                        f"(batch {batch_number}); try a lower lr (now {lr:g})",
                        epoch=epoch,
                        batch=batch_number,
                    )
                if stop:
                    stopped = True
                    break
        if stopped:
            return LoopResult(
                progress.last_metrics, True, progress.epoch, progress.best_epoch, distributed.is_main
            )
        totals = torch.tensor([loss_sum.item(), float(sample_count)], dtype=torch.float64, device=device)
        if distributed.enabled:
            dist.all_reduce(totals)
        train_loss = float(totals[0] / totals[1])

        metrics, debug = {}, {}
        if distributed.is_main:
            metrics, debug = _evaluate(model, validation_loader, config, device)
            metrics = {"train_loss": train_loss, **metrics, "learning_rate": lr}
            norms = (norm_sum / max(batch_count, 1)).tolist()
            # {layer: mean over the epoch's batches of the layer's gradient L2 norm}
            debug["gradient_norms"] = dict(zip(layer_names, norms, strict=True))
            debug["learning_rate"] = {"value": lr}
        if distributed.enabled:
            shared = [metrics]
            dist.broadcast_object_list(shared, src=0, device=device if device.type == "cuda" else None)
            metrics = shared[0]

        progress.epoch = epoch
        progress.last_metrics = metrics
        if config.early_stopping_patience is not None:
            _update_early_stopping(progress, model, metrics, config.early_stopping_patience)
        if distributed.is_main:
            # Metrics before the checkpoint: a crash in between re-logs this epoch with the same values
            # after the resume (the runner may upsert by key and step); the other order would lose them.
            context.log_metrics(metrics, step=epoch)
            for kind, payload in debug.items():
                context.log_debug(kind, payload, step=epoch)
            context.save_checkpoint(
                _checkpoint_state(model, optimizer, progress, config, device), epoch=epoch
            )
            context.progress(epoch / config.epochs, f"epoch {epoch}/{config.epochs}")

    final = progress.last_metrics
    if config.early_stopping_patience is not None and progress.best_weights is not None:
        model.load_state_dict({key: value.to(device) for key, value in progress.best_weights.items()})
        final = progress.best_metrics
    return LoopResult(dict(final), False, progress.epoch, progress.best_epoch, distributed.is_main)


def _loader(
    dataset: Dataset,
    sampler: Sampler,
    config: LoopConfig,
    *,
    shuffle_seed: int,
    batch_size: int | None = None,
) -> DataLoader:
    in_memory = isinstance(dataset, TensorDataset)
    workers = 0 if in_memory else config.num_workers
    return DataLoader(
        dataset,
        batch_sampler=torch.utils.data.BatchSampler(
            sampler, batch_size or config.batch_size, drop_last=False
        ),
        num_workers=workers,
        persistent_workers=workers > 0,
        # Forking a process that has already run multi-threaded torch (or holds database and log
        # threads, as a job does) can hang the children; a fresh forkserver cannot.
        multiprocessing_context="forkserver" if workers > 0 else None,
        collate_fn=keep_batch if in_memory else None,
        # The loader's own seed (worker seeds) must not draw from the global RNG: that RNG belongs to
        # dropout and is what a checkpoint restores.
        generator=torch.Generator().manual_seed(shuffle_seed),
        pin_memory=False,
    )


def _layer_norms(parameters: list[nn.Parameter], layer_of: torch.Tensor) -> torch.Tensor:
    """Return each layer's gradient L2 norm; layer_of is a [layers, parameters] 0/1 matrix (a matmul
    rather than index_add_, whose CUDA kernel is not deterministic)."""
    squares = torch.stack(
        [
            parameter.grad.detach().double().pow(2).sum()
            if parameter.grad is not None
            else torch.zeros((), dtype=torch.float64, device=layer_of.device)
            for parameter in parameters
        ]
    )
    return (layer_of @ squares).sqrt()


def _sync_flags(
    stop: bool, loss_sum: torch.Tensor, distributed: _Distributed, device: torch.device
) -> tuple[bool, bool]:
    diverged_here = not torch.isfinite(loss_sum).item()
    if not distributed.enabled:
        return stop, diverged_here
    flags = torch.tensor([float(stop), float(diverged_here)], device=device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags[0].item()), bool(flags[1].item())


@torch.no_grad()
def _evaluate(
    model: nn.Module, loader: DataLoader, config: LoopConfig, device: torch.device
) -> tuple[dict[str, float], dict[str, dict]]:
    was_training = model.training
    model.eval()
    loss_sum, count = 0.0, 0
    predictions, truths = [], []
    for features, targets in loader:
        features = features.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        output = model(features)
        if config.task == "classification":
            loss_sum += float(nn.functional.cross_entropy(output, targets, reduction="sum"))
            predictions.append(output.argmax(dim=1).cpu().numpy())
        else:
            output = output.squeeze(-1)
            loss_sum += float(nn.functional.mse_loss(output, targets, reduction="sum"))
            predictions.append(output.double().cpu().numpy())
        truths.append(targets.cpu().numpy())
        count += len(targets)
    model.train(was_training)
    predicted = np.concatenate(predictions)
    truth = np.concatenate(truths)
    metrics = {"val_loss": loss_sum / max(count, 1)}
    debug: dict[str, dict] = {}
    if config.task == "classification":
        matrix = confusion_matrix(truth, predicted, len(config.labels))
        scores = classification_metrics(matrix)
        metrics["val_accuracy"] = scores["accuracy"]
        metrics["val_f1"] = scores["f1"]
        debug["confusion_matrix"] = confusion_payload(matrix, config.labels)
    else:
        scale = config.target_std
        scores = regression_metrics(
            truth * scale + config.target_mean, predicted * scale + config.target_mean
        )
        metrics.update({f"val_{name}": value for name, value in scores.items()})
    return metrics, debug


def _update_early_stopping(progress: _Progress, model: nn.Module, metrics: dict, patience: int) -> None:
    val_loss = metrics["val_loss"]
    if progress.best_val_loss is None or val_loss < progress.best_val_loss:
        progress.best_val_loss = val_loss
        progress.best_epoch = progress.epoch
        progress.best_metrics = dict(metrics)
        progress.best_weights = {key: value.detach().clone() for key, value in model.state_dict().items()}
        progress.bad_epochs = 0
    else:
        progress.bad_epochs += 1
        progress.finished = progress.bad_epochs >= patience


def _checkpoint_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: _Progress,
    config: LoopConfig,
    device: torch.device,
) -> dict:
    state: dict = {"loop": progress.meta(), "fingerprint": config.fingerprint}
    state.update(pack_module("model", model))
    state.update(pack_optimizer(optimizer))
    if progress.best_weights is not None:
        state.update({f"best/{key}": value for key, value in progress.best_weights.items()})
    state["rng/cpu"] = torch.get_rng_state()
    if device.type == "cuda":
        state["rng/cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore(
    checkpoint: tuple[dict, int],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: LoopConfig,
    device: torch.device,
) -> _Progress:
    state, epoch = checkpoint
    loop = state.get("loop") or {}
    expected = json.loads(json.dumps(config.fingerprint))
    if loop.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != expected:
        raise TrainerError(
            "the checkpoint does not match this job (another dataset, target or hyperparameters); "
            "start a new run instead of resuming",
            code="checkpoint_mismatch",
        )
    model.load_state_dict({key: value.to(device) for key, value in unpack_module("model", state).items()})
    unpack_optimizer(optimizer, state)
    # RNG states must be CPU byte tensors, whatever map_location a runner loaded the checkpoint with.
    torch.set_rng_state(state["rng/cpu"].cpu())
    if device.type == "cuda" and "rng/cuda" in state:
        torch.cuda.set_rng_state(state["rng/cuda"].cpu(), device)
    best = unpack_module("best", state)
    return _Progress(
        epoch=int(loop.get("epoch", epoch)),
        best_val_loss=loop.get("best_val_loss"),
        best_epoch=int(loop.get("best_epoch", 0)),
        bad_epochs=int(loop.get("bad_epochs", 0)),
        last_metrics=dict(loop.get("last_metrics") or {}),
        best_metrics=dict(loop.get("best_metrics") or {}),
        best_weights={key: value.to(device) for key, value in best.items()} or None,
        finished=bool(loop.get("finished", False)),
    )
