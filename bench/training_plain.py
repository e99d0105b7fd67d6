"""The plain-script baseline of `bench.training_overhead`: a built-in trainer with no Studio around it.

    python -m bench.training_plain '<JSON: trainer, parquet_path, schema, target, hyperparameters,
                                     output_dir>'

What a user would write without Studio: read the Parquet file, fit the trainer with an in-memory
`RecordingContext` (metrics in a list, checkpoints as bytes), write the model files. No Django, no
database, no queue. Prints one line of JSON: the final metrics and what was recorded.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(arguments: dict) -> dict:
    started = time.perf_counter()
    import torch

    from training.trainers import get_trainer
    from training.trainers.base import TrainingData
    from training.trainers.recording import RecordingContext

    # The thread count the job runner picks (STUDIO_TORCH_THREADS, else torch's default).
    torch.set_num_threads(max(1, int(os.environ.get("STUDIO_TORCH_THREADS", "0")) or torch.get_num_threads()))
    seed = int(arguments["hyperparameters"].get("seed") or 0)
    context = RecordingContext(Path(arguments["output_dir"]), device="cpu", seed=seed)
    data = TrainingData(parquet_path=Path(arguments["parquet_path"]), schema=arguments["schema"])
    fit_started = time.perf_counter()
    final = get_trainer(arguments["trainer"]).fit(
        data,
        target=arguments["target"],
        hyperparameters=arguments["hyperparameters"],
        context=context,
    )
    return {
        "final_metrics": {key: float(value) for key, value in (final or {}).items()},
        "metric_points": sum(len(metrics) for _step, metrics in context.metrics),
        "checkpoints": len(context.checkpoint_epochs),
        "model_files": sorted(p.name for p in Path(arguments["output_dir"]).rglob("*") if p.is_file()),
        "import_s": round(fit_started - started, 3),
        "fit_s": round(time.perf_counter() - fit_started, 3),
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
