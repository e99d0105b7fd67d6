"""`client.hpo`: hyperparameter studies; every trial is a training job run by Studio's workers.

study = client.hpo.create_study(
    name="iris lr", trainer="tabular_classification", dataset="iris", target="species",
    objective_metric="val_loss", direction="minimize",
    search_space={"lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
                  "batch_size": {"type": "categorical", "choices": [16, 32, 64]}},
    sampler="tpe", pruner="median", n_trials=20, parallelism=2,
)
study.wait()                      # a tqdm bar of the trials done
study.best_trial                  # {"number", "params", "value", "run_id", ...}
study.trials_dataframe()          # one pandas row per trial
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio_sdk._http import Transport
from studio_sdk.datasets import ProjectScope, _Context, _pandas, poll_job
from studio_sdk.exceptions import StudioError
from studio_sdk.training import Training

FINAL_STATUSES = ("finished", "failed", "stopped")


class StudyFailedError(StudioError):
    """A study ended as failed (e.g. its objective metric was never logged); `message` says why."""

    def __init__(self, message: str, *, study: Study | None = None) -> None:
        super().__init__(message, None, "study_failed", {"study_id": study.id if study else None})
        self.study = study


class Study:
    """A handle on a study: `refresh()`, `wait()`, `best_trial`, `trials`, `trials_dataframe()`,
    `pause()`, `resume()`, `stop()` and `extend(n)`."""

    def __init__(self, study_id: int, context: _Context) -> None:
        self.id = study_id
        self._context = context
        self.data: dict[str, Any] = {}

    @classmethod
    def _from_api(cls, data: dict, context: _Context) -> Study:
        return cls(data["id"], context)._update(data)

    def _update(self, data: dict) -> Study:
        self.data = data
        return self

    def __getattr__(self, name: str) -> Any:
        # name, status, message, objective_metric, direction, n_trials, ... as the API returns them
        data = self.__dict__.get("data") or {}
        if name in data:
            return data[name]
        raise AttributeError(name)

    @property
    def trials(self) -> list[dict]:
        return list(self.data.get("trials") or [])

    @property
    def best_trial(self) -> dict | None:
        """The complete trial with the best objective value (as of the last refresh), or None."""
        return self.data.get("best_trial")

    @property
    def progress(self) -> float:
        # Trials that ended, over the trial budget (a time-limited study without one shows 0 until done).
        done = sum(1 for trial in self.trials if trial["state"] != "running")
        budget = self.data.get("n_trials")
        if self.data.get("status") in FINAL_STATUSES:
            return 1.0
        return min(1.0, done / budget) if budget else 0.0

    @property
    def message(self) -> str:
        counts = self.data.get("counts") or {}
        best = self.best_trial
        text = " ".join(f"{state} {count}" for state, count in counts.items() if count)
        if best is not None:
            text += f" · best {best['value']:.4g} (trial {best['number']})"
        return self.data.get("message") or text

    def refresh(self) -> Study:
        return self._update(self._context.call("GET", f"studies/{self.id}"))

    def pause(self) -> Study:
        """Ask for no new trials; running ones finish."""
        return self._update(self._context.call("POST", f"studies/{self.id}/pause"))

    def resume(self) -> Study:
        return self._update(self._context.call("POST", f"studies/{self.id}/resume"))

    def stop(self) -> Study:
        """Stop the study and its running trials."""
        return self._update(self._context.call("POST", f"studies/{self.id}/stop"))

    def extend(self, n_trials: int) -> Study:
        """Add `n_trials` to the budget (a finished study runs again)."""
        return self._update(
            self._context.call("POST", f"studies/{self.id}/extend", json={"n_trials": n_trials})
        )

    def wait(
        self, timeout_s: float | None = None, progress: bool = True, *, poll_interval_s: float | None = None
    ) -> Study:
        """Poll until the study ends; return self, or raise StudyFailedError with the study's message.

        A stopped study returns normally (someone stopped it on purpose). Raises JobTimeoutError after
        `timeout_s` (the study goes on on the server).
        """

        def is_finished(study: Study) -> bool:
            if study.status == "failed":
                raise StudyFailedError(
                    study.data.get("message") or f"The study {study.id} failed.", study=study
                )
            return study.status in ("finished", "stopped")

        poll_job(
            self,
            label=f"study {self.id}",
            timeout_s=timeout_s,
            progress=progress,
            poll_interval_s=poll_interval_s,
            is_finished=is_finished,
        )
        return self

    def trials_dataframe(self):
        """One row per trial: number, state, value, params_<name>..., pruned_at_step, run_id, duration_s."""
        pandas = _pandas()
        rows = []
        for trial in self.trials:
            row = {
                "number": trial["number"],
                "state": trial["state"],
                "value": trial["value"],
                "pruned_at_step": trial["pruned_at_step"],
                "run_id": trial["run_id"],
                "duration_s": trial["duration_s"],
            }
            row.update({f"params_{name}": value for name, value in (trial.get("params") or {}).items()})
            rows.append(row)
        return pandas.DataFrame(rows)

    def __repr__(self) -> str:
        return f"<Study id={self.id} name={self.data.get('name')!r} status={self.data.get('status')!r}>"


def _search_space(search_space: Any) -> list[dict]:
    """Accept a list of {"name", "type", ...} or a mapping name → {"type", ...}."""
    if isinstance(search_space, dict):
        return [{"name": name, **spec} for name, spec in search_space.items()]
    return list(search_space or [])


class Hpo:
    """`client.hpo`: hyperparameter studies of the client's project."""

    def __init__(self, transport: Transport, scope: ProjectScope) -> None:
        self._http = transport
        self._scope = scope

    def create_study(
        self,
        name: str,
        trainer: str | None = None,
        dataset: Any = None,
        objective_metric: str = "val_loss",
        search_space: Any = None,
        direction: str = "minimize",
        target: str | None = None,
        hyperparameters: dict[str, Any] | None = None,
        sampler: str = "tpe",
        pruner: str = "none",
        n_trials: int | None = None,
        time_limit_s: int | None = None,
        parallelism: int = 2,
        *,
        script: str | Path | None = None,
        seed: int | None = None,
        gpus: int = 0,
        queue: str | None = None,
        trial_time_limit_s: int | None = None,
        enqueue: list[dict] | None = None,
        wait: bool = False,
        progress: bool = True,
        timeout_s: float | None = None,
    ) -> Study:
        """Create and start a study; return its `Study` (bad input raises ValidationError naming it).

        Trials run the built-in `trainer`, or `script` (the path of your .py or .ipynb, run with each
        trial's params as `--name value` arguments; it logs the objective with studio_sdk).
        `dataset` is a `DatasetVersion`, a version id or a dataset name (its latest version);
        `search_space` a mapping name → {"type": "float"|"int"|"categorical", "low", "high", "log",
        "step", "choices"}; `enqueue` configurations to try first. With `wait`, waits for the end.
        """
        context = self._scope.context()
        script_body = None
        if script is not None:
            path = Path(script)
            script_body = {"filename": path.name, "source": path.read_text(encoding="utf-8")}
        body = {
            "name": name,
            "trainer": trainer or "",
            "script": script_body,
            "dataset_version_id": None if dataset is None else Training._version_id(context, dataset),
            "objective_metric": objective_metric,
            "direction": direction,
            "search_space": _search_space(search_space),
            "target": target,
            "hyperparameters": dict(hyperparameters or {}),
            "sampler": sampler,
            "seed": seed,
            "pruner": pruner,
            "n_trials": n_trials,
            "time_limit_s": time_limit_s,
            "parallelism": parallelism,
            "gpus": gpus,
            "queue": queue,
            "trial_time_limit_s": trial_time_limit_s,
            "enqueue": list(enqueue or []),
        }
        study = Study._from_api(context.call("POST", "studies", json=body), context)
        if wait:
            study.wait(timeout_s=timeout_s, progress=progress)
        return study

    def study(self, study_id: int) -> Study:
        context = self._scope.context()
        return Study._from_api(context.call("GET", f"studies/{int(study_id)}"), context)

    def studies(self) -> list[Study]:
        """The project's studies, newest first (summaries: call `refresh()` for trials)."""
        context = self._scope.context()
        return [Study._from_api(item, context) for item in context.paginate("studies")]
