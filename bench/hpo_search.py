"""Issue 5, Quality: TPE vs random at the same budget, and ASHA/hyperband pruning vs none, on digits.

The objective is what a Studio study's trial runs: the built-in `tabular_classification` trainer (an
MLP) on scikit-learn's digits (1,797 images of 8x8 pixels as 64 numeric columns, label as a category),
maximising the last epoch's `val_accuracy`. Trials run in this process with the in-memory
`RecordingContext` (the same trainer code a job's child runs), and the samplers and pruners are built
by Studio's own `training.studies.build_sampler` / `build_pruner` from an unsaved `Study` row, asked
once per trial (`draw`) exactly as the `training.study_step` task does. What is measured is search
quality, so dispatch plays no part here (`bench.hpo_dispatch` measures that).

- TPE vs random: the best value each finds in `TRIALS` trials, over 3 seeds; the goal is reported
  (TPE's mean best ≥ random's), the spread is shown.
- Pruning: for each seed, the random-sampler study without pruning spends `TRIALS` × `EPOCHS` epochs
  and first reaches its best value B after E epochs. Studies with successive halving (ASHA) and with
  hyperband then draw trials from the same seeded random sampler — Studio seeds each draw, so the
  n-th configuration is the same with or without pruning, and the trainer is deterministic: what
  differs is only what the pruner stops — until a completed trial reaches B (counting every epoch
  trained, pruned trials included), within the no-pruning study's whole epoch budget. Goal: at most
  50 % of E (the median over seeds). (With TPE the proposals would depend on which trials were pruned,
  and the comparison would measure luck as much as pruning.)
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._studio import setup_django
from bench.common import markdown_table

TITLE = (
    "HPO: TPE vs random at the same budget; ASHA/hyperband vs no pruning (epochs to the same best), digits"
)
SEEDS = (1, 2, 3)
TRIALS = 30
EPOCHS = 9  # hyperband with reduction factor 3 gets brackets of 1, 3 and 9 epochs
SEARCH_SPACE = [
    {"name": "lr", "type": "float", "low": 1e-4, "high": 0.3, "log": True},
    {"name": "dropout", "type": "float", "low": 0.0, "high": 0.6},
    {"name": "weight_decay", "type": "float", "low": 1e-6, "high": 0.1, "log": True},
    {"name": "batch_size", "type": "categorical", "choices": [16, 32, 64, 256]},
    {"name": "hidden_layers", "type": "categorical", "choices": ["16", "64", "256", "64,64"]},
]
FIXED = {"epochs": EPOCHS, "seed": 0, "lr_schedule": "constant", "validation_fraction": 0.25}


def run(*, quick: bool) -> dict[str, Any]:
    setup_django()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seeds = SEEDS[:1] if quick else SEEDS
    trials = 4 if quick else TRIALS
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="studio-bench-hpo-") as folder:
        data = _digits(Path(folder))
        objective = _Objective(data, Path(folder))
        sampler_rows = []
        for seed in seeds:
            for sampler in ("random", "tpe"):
                search = _search(objective, sampler=sampler, pruner="none", seed=seed, trials=trials)
                sampler_rows.append({"sampler": sampler, "seed": seed, **search})
        pruning_rows = []
        for seed in seeds:
            baseline = next(row for row in sampler_rows if row["sampler"] == "random" and row["seed"] == seed)
            for pruner in ("successive_halving", "hyperband"):
                search = _search(
                    objective,
                    sampler="random",
                    pruner=pruner,
                    seed=seed,
                    trials=trials * 4,
                    target=baseline["best"],
                    epoch_budget=baseline["epochs"],
                )
                pruning_rows.append(
                    {
                        "pruner": pruner,
                        "seed": seed,
                        "target": baseline["best"],
                        "baseline_epochs": baseline["epochs"],
                        "baseline_epochs_to_best": baseline["epochs_to_best"],
                        **search,
                    }
                )
    mean_best = {
        sampler: statistics.fmean(row["best"] for row in sampler_rows if row["sampler"] == sampler)
        for sampler in ("random", "tpe")
    }
    fractions = {}
    for pruner in ("successive_halving", "hyperband"):
        rows = [row for row in pruning_rows if row["pruner"] == pruner]
        fractions[pruner] = statistics.median(
            (row["epochs_to_target"] / row["baseline_epochs_to_best"])
            if row["epochs_to_target"]
            else math.inf
            for row in rows
        )
    best_pruner = min(fractions, key=fractions.get)
    goal_met = mean_best["tpe"] >= mean_best["random"] and fractions[best_pruner] <= 0.5
    return {
        "title": TITLE,
        "goal": "TPE's best ≥ random's at the same budget (3 seeds); a pruner reaches the no-pruning best "
        "value in ≤ 50 % of its epochs",
        "goal_met": goal_met,
        "headline": (
            f"mean best val_accuracy TPE {mean_best['tpe']:.4f} vs random {mean_best['random']:.4f}; "
            f"epochs to the no-pruning best: ASHA {_percent(fractions['successive_halving'])}, "
            f"hyperband {_percent(fractions['hyperband'])} of no pruning"
        ),
        "trials": trials,
        "epochs": EPOCHS,
        "seeds": list(seeds),
        "search_space": SEARCH_SPACE,
        "fixed": FIXED,
        "samplers": sampler_rows,
        "mean_best": mean_best,
        "pruning": pruning_rows,
        "epoch_fraction_median": fractions,
        "seconds": time.perf_counter() - started,
    }


def _percent(fraction: float) -> str:
    return "never" if math.isinf(fraction) else f"{fraction:.0%}"


def _digits(folder: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import load_digits

    from training.trainers.base import TrainingData

    digits = load_digits()
    columns = {f"p{index}": digits.data[:, index].astype("float64") for index in range(digits.data.shape[1])}
    columns["label"] = [f"d{value}" for value in digits.target]
    path = folder / "digits.parquet"
    pq.write_table(pa.table(columns), path)
    schema = {name: "numeric" for name in columns if name != "label"} | {"label": "categorical"}
    return TrainingData(parquet_path=path, schema=schema)


class _Pruned(Exception):
    pass


class _Objective:
    """One trial: fit the trainer, reporting val_accuracy each epoch to the trial (pruning as a job does)."""

    def __init__(self, data, folder: Path):
        self.data, self.folder = data, folder

    def __call__(self, trial, params: dict) -> tuple[float | None, int, bool]:
        import torch

        from training.trainers import get_trainer
        from training.trainers.recording import RecordingContext

        torch.set_num_threads(1)
        hyperparameters = {**FIXED, **params}
        hyperparameters["hidden_layers"] = [int(width) for width in str(params["hidden_layers"]).split(",")]
        state = {"epochs": 0, "pruned": False, "value": None}

        class Context(RecordingContext):
            def log_metrics(self, metrics, *, step):
                super().log_metrics(metrics, step=step)
                if "val_accuracy" in metrics:
                    state["epochs"], state["value"] = step, float(metrics["val_accuracy"])
                    trial.report(state["value"], step)
                    if trial.should_prune():
                        state["pruned"] = True

        context = Context(self.folder / f"trial-{trial.number}", stop_when=lambda _context: state["pruned"])
        trainer = get_trainer("tabular_classification")
        trainer.fit(self.data, target="label", hyperparameters=hyperparameters, context=context)
        return state["value"], state["epochs"], state["pruned"]


def _search(
    objective: _Objective,
    *,
    sampler: str,
    pruner: str,
    seed: int,
    trials: int,
    target: float | None = None,
    epoch_budget: int | None = None,
) -> dict[str, Any]:
    import optuna

    from training.studies import build_pruner, build_sampler, distributions
    from training.study_models import Study

    model = Study(
        name="bench",
        objective_metric="val_accuracy",
        direction="maximize",
        search_space=SEARCH_SPACE,
        sampler=sampler,
        seed=seed,
        pruner=pruner,
        n_trials=trials,
        template={"hyperparameters": FIXED},
    )
    study = optuna.create_study(direction="maximize", pruner=build_pruner(model))
    space = distributions(SEARCH_SPACE)
    epochs = epochs_to_best = 0
    best = -math.inf
    epochs_to_target = None
    pruned = 0
    started = time.perf_counter()
    for draw in range(trials):
        study.sampler = build_sampler(model, draw=draw)
        trial = study.ask(space)
        value, trained, was_pruned = objective(trial, trial.params)
        epochs += trained
        if was_pruned:
            pruned += 1
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        if value is not None and not was_pruned and value > best:
            best, epochs_to_best = value, epochs
        if target is not None and value is not None and not was_pruned and value >= target:
            epochs_to_target = epochs
            break
        if epoch_budget is not None and epochs >= epoch_budget:
            break
    return {
        "best": best,
        "epochs": epochs,
        "epochs_to_best": epochs_to_best,
        "epochs_to_target": epochs_to_target,
        "trials_run": draw + 1,
        "pruned": pruned,
        "seconds": time.perf_counter() - started,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Objective: `tabular_classification` on scikit-learn digits (1,797 rows, 64 numeric columns), "
        f"maximise the last epoch's `val_accuracy` (25 % held out, same split for every trial); "
        f"{result['epochs']} epochs per trial; fixed {result['fixed']}; search space: "
        + ", ".join(f"`{item['name']}`" for item in result["search_space"])
        + ". Samplers and pruners from `training.studies.build_sampler` / `build_pruner`, asked once per "
        "trial as the `training.study_step` task does; trials run in this process.",
        "",
        f"### TPE vs random, {result['trials']} trials each",
        "",
        markdown_table(
            ["sampler", "seed", "best val_accuracy", "trials to the best (epochs / 9)", "seconds"],
            [
                [
                    row["sampler"],
                    row["seed"],
                    f"{row['best']:.4f}",
                    row["epochs_to_best"] // result["epochs"],
                    f"{row['seconds']:.0f}",
                ]
                for row in result["samplers"]
            ],
        ),
        "",
        f"Mean best: TPE **{result['mean_best']['tpe']:.4f}**, "
        f"random **{result['mean_best']['random']:.4f}**.",
        "",
        "### Pruning: epochs to reach the no-pruning study's best value",
        "",
        "The random-sampler study above (no pruning) sets the target B and the epoch budget; the pruned "
        "study (same seeded draws, so the same configurations in the same order) draws trials until a "
        "completed trial reaches B.",
        "",
        markdown_table(
            [
                "pruner",
                "seed",
                "target B",
                "no pruning: epochs (to B)",
                "pruned: epochs to B",
                "share",
                "trials",
                "pruned trials",
            ],
            [
                [
                    row["pruner"],
                    row["seed"],
                    f"{row['target']:.4f}",
                    f"{row['baseline_epochs']} ({row['baseline_epochs_to_best']})",
                    row["epochs_to_target"] if row["epochs_to_target"] else f"not reached in {row['epochs']}",
                    _percent(row["epochs_to_target"] / row["baseline_epochs_to_best"])
                    if row["epochs_to_target"]
                    else "—",
                    row["trials_run"],
                    row["pruned"],
                ]
                for row in result["pruning"]
            ],
        ),
        "",
        "Median share of the epochs the no-pruning study needed to reach B: "
        + ", ".join(
            f"{name} **{_percent(value)}**" for name, value in result["epoch_fraction_median"].items()
        )
        + " (goal ≤ 50 %).",
    ]
    return "\n".join(lines) + "\n"
