"""The tabular trainer under torch.distributed: two CPU processes on gloo, as torchrun would start them."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from training.trainers import TrainingData, get_trainer, predict
from training.trainers.recording import RecordingContext

WORLD_SIZE = 2
HYPERPARAMETERS = {"epochs": 4, "hidden_layers": [16], "lr": 0.02, "batch_size": 16}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, port: int, parquet_path: str, schema: dict, output_dir: str, report_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        context = RecordingContext(Path(output_dir), seed=0)
        final = get_trainer("tabular_classification").fit(
            TrainingData(Path(parquet_path), schema),
            target="target",
            hyperparameters=HYPERPARAMETERS,
            context=context,
        )
        report = {
            "final": final,
            "metric_steps": [step for step, _ in context.metrics],
            "checkpoints": context.checkpoint_epochs,
            "debug": len(context.debug),
        }
        (Path(report_dir) / f"rank{rank}.json").write_text(json.dumps(report))
        dist.barrier()  # as the job runner does: no rank tears gloo down while another still works
    finally:
        dist.destroy_process_group()


def test_two_cpu_processes_on_gloo(wine, tmp_path):
    # given two ranks sharing one output directory
    output_dir, report_dir = tmp_path / "output", tmp_path / "reports"
    report_dir.mkdir()
    # when
    mp.spawn(
        _worker,
        args=(_free_port(), str(wine.parquet_path), wine.schema, str(output_dir), str(report_dir)),
        nprocs=WORLD_SIZE,
        join=True,
    )
    # then both trained together, and only rank 0 logged, checkpointed and wrote the model
    rank0 = json.loads((report_dir / "rank0.json").read_text())
    rank1 = json.loads((report_dir / "rank1.json").read_text())
    assert rank0["metric_steps"] == [1, 2, 3, 4]
    assert rank0["checkpoints"] == [1, 2, 3, 4]
    assert rank0["debug"] == 4 * 3  # confusion matrix, gradient norms, learning rate per epoch
    assert rank1 == {"final": rank0["final"], "metric_steps": [], "checkpoints": [], "debug": 0}
    assert rank0["final"]["val_accuracy"] > 0.8
    assert sorted(path.name for path in output_dir.iterdir()) == [
        "model.json",
        "model.safetensors",
        "model.torchscript.pt",
    ]
    card = json.loads((output_dir / "model.json").read_text())
    assert card["training"]["rows_train"] == 142  # both ranks' shards together
    assert card["labels"] == [0, 1, 2]
    rows = [{"alcohol": 13.0, "malic_acid": 2.0}]  # partial rows: missing columns read as missing
    assert predict(output_dir, rows)["predictions"][0] in (0, 1, 2)
