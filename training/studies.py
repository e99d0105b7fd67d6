"""Hyperparameter studies: define one, run it ask-and-tell through Celery, pause, resume, stop, extend.

Every trial is an ordinary training job (training/jobs.py), so trials get logs, metrics, the debugger,
checkpoints and the reaper's fault handling for free. Optuna keeps the sampler's and the pruner's state
in its own tables (RDB storage on the studio's database); `Study`/`StudyTrial` rows mirror what the
pages and the API show.

The loop: `study_step` (a Celery task, one at a time per study thanks to a row lock) settles the trials
whose jobs ended, then asks Optuna for new trials while fewer than `parallelism` run and budget is
left. A job that ends enqueues a step (jobs._finish), so the study moves as fast as its trials do.

A complete trial's value is the objective metric's *last logged value*: the value at its highest step
(the run's LatestMetric). Intermediate values are reported by the job's runner after every epoch's
flush (`study_trial_report`); a pruned job stops at its next batch and ends `stopped` with the error
code `pruned`.
"""

from __future__ import annotations

import functools
import logging
import math
import uuid
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from studio.audit.services import audit_record
from studio.errors import ApplicationError
from studio.projects import events
from studio.projects.access import require
from training import tracking
from training.job_models import JobStatus, TrainingJob
from training.jobs import HYPERPARAMETER_NAME
from training.models import LatestMetric
from training.study_models import (
    Study,
    StudyDirection,
    StudyPruner,
    StudySampler,
    StudyStatus,
    StudyTrial,
    TrialState,
)

logger = logging.getLogger(__name__)

SEARCH_TYPES = ("float", "int", "categorical")
MAX_PARALLELISM = 32
MAX_TRIALS = 10_000
MAX_SEARCH_DIMENSIONS = 30
MAX_GRID_POINTS = 10_000
JOB_FINAL = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED}
PRUNED_CODE = "pruned"


# --- Optuna storage ----------------------------------------------------------------------------------


def optuna_storage_url(database: dict | None = None) -> str:
    """Return the SQLAlchemy URL of Optuna's storage, built from settings.DATABASES["default"].

    PostgreSQL: the studio's own database (Optuna's tables sit beside ours). SQLite: a sibling file
    (`<name>-optuna.sqlite3`), because SQLite has one writer per file and a study step holds the
    studio database's write lock while it asks Optuna for trials: one file would wait on itself.
    """
    database = database or settings.DATABASES["default"]
    engine = database["ENGINE"]
    if engine.endswith("sqlite3"):
        path = Path(str(database["NAME"]))
        return f"sqlite:///{path.with_name(path.stem + '-optuna.sqlite3')}"
    if "postgresql" in engine:
        user = quote(str(database.get("USER") or ""), safe="")
        password = quote(str(database.get("PASSWORD") or ""), safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = database.get("HOST") or "localhost"
        port = f":{database['PORT']}" if database.get("PORT") else ""
        return f"postgresql+psycopg://{auth}{host}{port}/{quote(str(database['NAME']), safe='')}"
    raise ApplicationError(f"studies need SQLite or PostgreSQL, not {engine}", status=500)


@functools.lru_cache(maxsize=4)
def _storage(url: str):
    # One engine per process and database, not one per call.
    import optuna
    from sqlalchemy.pool import NullPool

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # No pool: Celery forks its workers and the test database must be droppable; a loopback connection
    # per Optuna call costs about a millisecond.
    engine_kwargs = {"poolclass": NullPool}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def optuna_storage():
    return _storage(optuna_storage_url())


def build_sampler(study: Study, *, draw: int = 0):
    """Return the study's Optuna sampler.

    A sampler lives for one ask, so a seeded one gets a seed per draw: the same seed at every draw
    would propose the same point again and again.
    """
    import optuna

    seed = None if study.seed is None else (study.seed * 1_000_003 + draw) % 2**32
    if study.sampler == StudySampler.RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    if study.sampler == StudySampler.GRID:
        return optuna.samplers.GridSampler(grid_points(study.search_space), seed=seed)
    if study.sampler == StudySampler.CMAES:
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    # TPE models good vs bad trials once it has a few; Optuna's default of 10 random startup trials
    # would spend all of a small budget at random.
    startup = max(2, min(10, (study.n_trials or 40) // 4))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def build_pruner(study: Study):
    """Return the study's Optuna pruner (steps are epochs, counted from 1)."""
    import optuna

    if study.pruner == StudyPruner.MEDIAN:
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if study.pruner == StudyPruner.SUCCESSIVE_HALVING:
        # Optuna's own default rate: the top quarter of each rung goes on to four times the epochs.
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4)
    if study.pruner == StudyPruner.HYPERBAND:
        epochs = (study.template.get("hyperparameters") or {}).get("epochs")
        max_resource = int(epochs) if isinstance(epochs, int) and epochs >= 3 else "auto"
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_resource, reduction_factor=3)
    return optuna.pruners.NopPruner()


def optuna_study(study: Study, *, draw: int = 0):
    import optuna

    return optuna.load_study(
        study_name=study.optuna_study_name,
        storage=optuna_storage(),
        sampler=build_sampler(study, draw=draw),
        pruner=build_pruner(study),
    )


def distributions(search_space: list[dict]) -> dict:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    result = {}
    for item in search_space:
        if item["type"] == "float":
            result[item["name"]] = FloatDistribution(
                item["low"], item["high"], log=bool(item.get("log")), step=item.get("step")
            )
        elif item["type"] == "int":
            result[item["name"]] = IntDistribution(
                int(item["low"]),
                int(item["high"]),
                log=bool(item.get("log")),
                step=int(item.get("step") or 1),
            )
        else:
            result[item["name"]] = CategoricalDistribution(item["choices"])
    return result


def grid_points(search_space: list[dict]) -> dict[str, list]:
    """Return the grid sampler's values per hyperparameter (ranges need a step, or are ints)."""
    grid = {}
    for item in search_space:
        if item["type"] == "categorical":
            grid[item["name"]] = list(item["choices"])
        elif item["type"] == "int":
            grid[item["name"]] = list(
                range(int(item["low"]), int(item["high"]) + 1, int(item.get("step") or 1))
            )
        else:
            step, low, high = item["step"], item["low"], item["high"]
            count = int(math.floor((high - low) / step + 1e-9)) + 1
            grid[item["name"]] = [round(low + index * step, 12) for index in range(count)]
    return grid


# --- validation ------------------------------------------------------------------------------------


def _invalid(message: str, field: str) -> ApplicationError:
    return ApplicationError(f"{field}: {message}", code="invalid_study", extra={"field": field})


def _number(value, *, name: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"{name}: {what} must be a finite number, got {value!r}", "search_space")
    return value


def clean_search_space(search_space, *, trainer, fixed: dict, sampler: str) -> list[dict]:
    """Return the search space normalized, or raise naming the hyperparameter and what is wrong.

    With a built-in trainer every name must be one of its hyperparameters and every bound or choice a
    value the trainer itself accepts (its own `validate_hyperparameters`); a script (trainer None)
    takes any valid argument name.
    """
    from training.trainers.base import TrainerError

    if not isinstance(search_space, list) or not search_space:
        raise _invalid("give at least one hyperparameter to search over", "search_space")
    if len(search_space) > MAX_SEARCH_DIMENSIONS:
        raise _invalid(f"at most {MAX_SEARCH_DIMENSIONS} hyperparameters", "search_space")
    known = {parameter.name: parameter for parameter in trainer.hyperparameters} if trainer else {}
    cleaned, seen = [], set()
    for raw in search_space:
        if not isinstance(raw, dict):
            raise _invalid("each entry is an object with name, type and a range or choices", "search_space")
        name = str(raw.get("name") or "").strip()
        if not name:
            raise _invalid("every entry needs a name", "search_space")
        if name in seen:
            raise _invalid(f"{name} appears twice", "search_space")
        seen.add(name)
        if trainer is None and not HYPERPARAMETER_NAME.match(name):
            raise _invalid(
                f"{name!r} is not a valid argument name (letters, digits and _, not starting with a digit)",
                "search_space",
            )
        if trainer is not None and name not in known:
            try:
                trainer.validate_hyperparameters({name: None})
            except TrainerError as error:
                raise _invalid(error.message, "search_space") from None
        if name in fixed:
            raise _invalid(
                f"{name} is also a fixed hyperparameter; search it or fix it, not both", "search_space"
            )
        kind = raw.get("type")
        if kind not in SEARCH_TYPES:
            raise _invalid(
                f"{name}: type must be one of {', '.join(SEARCH_TYPES)}, got {kind!r}", "search_space"
            )
        parameter = known.get(name)
        if kind == "categorical":
            item = _clean_categorical(raw, name)
            values = item["choices"]
        else:
            item = _clean_range(raw, name, kind, parameter, sampler)
            values = [item["low"], item["high"]]
        for value in values if trainer is not None else []:
            try:
                trainer.validate_hyperparameters({**fixed, name: value})
            except TrainerError as error:
                raise _invalid(error.message, "search_space") from None
        cleaned.append(item)
    return cleaned


def _clean_categorical(raw: dict, name: str) -> dict:
    choices = raw.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _invalid(f"{name}: a categorical needs at least one choice", "search_space")
    for choice in choices:
        if not isinstance(choice, str | int | float | bool) or (
            isinstance(choice, float) and not math.isfinite(choice)
        ):
            raise _invalid(
                f"{name}: choices must be numbers, strings or booleans, got {choice!r}", "search_space"
            )
    if len(set(map(repr, choices))) != len(choices):
        raise _invalid(f"{name}: the choices repeat a value", "search_space")
    return {"name": name, "type": "categorical", "choices": choices}


def _clean_range(raw: dict, name: str, kind: str, parameter, sampler: str) -> dict:
    if parameter is not None and parameter.type not in ("int", "float"):
        raise _invalid(
            f"{name} is a {parameter.type} hyperparameter; search it as a categorical with choices",
            "search_space",
        )
    if kind == "float" and parameter is not None and parameter.type == "int":
        raise _invalid(f"{name} takes integers; use type int", "search_space")
    low = _number(raw.get("low"), name=name, what="low")
    high = _number(raw.get("high"), name=name, what="high")
    if low == high:
        raise _invalid(f"{name}: empty range (low = high = {low:g}); low must be below high", "search_space")
    if low > high:
        raise _invalid(
            f"{name}: inverted range (low {low:g} > high {high:g}); low must be below high", "search_space"
        )
    is_log = bool(raw.get("log"))
    step = raw.get("step")
    if step in ("", None):
        step = None
    else:
        step = _number(step, name=name, what="step")
        if step <= 0:
            raise _invalid(f"{name}: step must be above 0, got {step:g}", "search_space")
        if step > high - low:
            raise _invalid(f"{name}: step {step:g} is wider than the range {low:g}..{high:g}", "search_space")
    if is_log and low <= 0:
        raise _invalid(f"{name}: a log scale needs low above 0, got {low:g}", "search_space")
    if is_log and step is not None and not (kind == "int" and step == 1):
        raise _invalid(f"{name}: a log scale cannot be combined with a step", "search_space")
    if kind == "int":
        for label, value in (("low", low), ("high", high), ("step", step)):
            if value is not None and not float(value).is_integer():
                raise _invalid(
                    f"{name}: {label} must be an integer for type int, got {value!r}", "search_space"
                )
        low, high = int(low), int(high)
        step = int(step) if step is not None else None
    else:
        low, high = float(low), float(high)
        step = float(step) if step is not None else None
        if sampler == StudySampler.GRID and step is None:
            raise _invalid(f"{name}: the grid sampler needs a step for a float range", "search_space")
    return {"name": name, "type": kind, "low": low, "high": high, "log": is_log, "step": step}


def _grid_size(search_space: list[dict]) -> int:
    size = 1
    for values in grid_points(search_space).values():
        size *= max(1, len(values))
    return size


# --- define ----------------------------------------------------------------------------------------


@transaction.atomic
def study_create(
    *,
    user,
    project,
    name: str,
    objective_metric: str,
    direction: str,
    search_space: list[dict],
    trainer: str | None = None,
    dataset_version=None,
    script_filename: str | None = None,
    script_source: str | None = None,
    target: str | None = None,
    hyperparameters: dict | None = None,
    sampler: str = StudySampler.TPE,
    seed: int | None = None,
    pruner: str = StudyPruner.NONE,
    n_trials: int | None = None,
    time_limit_s: int | None = None,
    parallelism: int = 2,
    gpus: int = 0,
    queue: str | None = None,
    trial_time_limit_s: int | None = None,
    enqueue: list[dict] | None = None,
    ip: str | None = None,
) -> Study:
    """Validate a study and start it: its first trials are asked for once this transaction commits.

    Trials run a built-in `trainer` on `dataset_version`, or the script `script_filename` (its text in
    `script_source`, the dataset version optional) with the trial's params as arguments.
    """
    import optuna

    from training.trainers import get_trainer
    from training.trainers.base import TrainerError

    require(user=user, project=project, action="training.run")
    name = str(name or "").strip()
    if not name or len(name) > 200:
        raise _invalid("required, at most 200 characters", "name")
    objective_metric = tracking.clean_key(objective_metric, field="objective_metric")
    if direction not in StudyDirection.values:
        raise _invalid(f"minimize or maximize, got {direction!r}", "direction")
    if sampler not in StudySampler.values:
        raise _invalid(f"one of {', '.join(StudySampler.values)}, got {sampler!r}", "sampler")
    if pruner not in StudyPruner.values:
        raise _invalid(f"one of {', '.join(StudyPruner.values)}, got {pruner!r}", "pruner")
    if not 1 <= int(parallelism) <= MAX_PARALLELISM:
        raise _invalid(f"between 1 and {MAX_PARALLELISM} trials at once", "parallelism")
    if n_trials is not None and not 1 <= n_trials <= MAX_TRIALS:
        raise _invalid(f"between 1 and {MAX_TRIALS}", "n_trials")
    if time_limit_s is not None and not 1 <= time_limit_s <= 30 * 24 * 3600:
        raise _invalid("between 1 second and 30 days", "time_limit_s")
    if dataset_version is not None and dataset_version.dataset.project_id != project.pk:
        raise ApplicationError("dataset_version: no such dataset version in this project.", status=404)
    queue = queue or ("gpu" if gpus else "default")
    if queue not in settings.STUDIO_TRAINING_QUEUES:
        raise _invalid(f"{queue!r} is not one of {', '.join(settings.STUDIO_TRAINING_QUEUES)}", "queue")
    if bool(trainer) == bool(script_filename):
        raise _invalid("give either a built-in trainer or a script (filename and source)", "trainer")
    if trainer:
        if dataset_version is None:
            raise _invalid("a built-in trainer needs a dataset version", "dataset_version")
        try:
            trainer_impl = get_trainer(trainer)
            fixed = dict(hyperparameters or {})
            trainer_impl.validate(schema=dataset_version.columns, target=target, hyperparameters=fixed)
            target = trainer_impl.resolve_target(dataset_version.columns, target)
        except TrainerError as error:
            raise ApplicationError(error.message, code=error.code, extra={"field": error.field}) from None
        template = {"kind": "trainer", "trainer": trainer, "target": target}
    else:
        from training.jobs import _check_script, _script_filename, _script_hyperparameters

        trainer_impl = None
        script_filename = _script_filename(script_filename)
        _check_script(script_filename, str(script_source or "").encode("utf-8"))
        fixed = _script_hyperparameters(hyperparameters)
        template = {
            "kind": "script",
            "filename": script_filename,
            "source": str(script_source),
            "trainer": "",
        }
    space = clean_search_space(search_space, trainer=trainer_impl, fixed=fixed, sampler=sampler)
    if sampler == StudySampler.GRID:
        size = _grid_size(space)
        if size > MAX_GRID_POINTS:
            raise _invalid(f"the grid has {size} points, more than {MAX_GRID_POINTS}", "search_space")
        n_trials = min(n_trials or size, size)
    if n_trials is None and time_limit_s is None:
        raise _invalid("give a budget: a number of trials, a time limit, or both", "n_trials")
    enqueued = _clean_enqueue(enqueue, space=space, trainer=trainer_impl, fixed=fixed)

    study = Study(
        project=project,
        name=name,
        objective_metric=objective_metric,
        direction=direction,
        search_space=space,
        sampler=sampler,
        seed=seed,
        pruner=pruner,
        n_trials=n_trials,
        time_limit_s=time_limit_s,
        parallelism=int(parallelism),
        template={
            **template,
            "dataset_version_id": dataset_version.pk if dataset_version is not None else None,
            "hyperparameters": fixed,
            "gpus": gpus,
            "queue": queue,
            "trial_time_limit_s": trial_time_limit_s,
        },
        optuna_study_name=f"studio-{project.pk}-{uuid.uuid4().hex}",
        created_by=user,
    )
    study.full_clean()
    study.save()
    created = optuna.create_study(
        study_name=study.optuna_study_name, storage=optuna_storage(), direction=direction
    )
    for params in enqueued:
        created.enqueue_trial(params, skip_if_exists=True)
    audit_record(
        user=user,
        project=project,
        action="training.study.create",
        target=study,
        ip=ip,
        data={
            "trainer": trainer or "",
            "script": script_filename or "",
            "sampler": sampler,
            "pruner": pruner,
            "n_trials": n_trials,
        },
    )
    _step_after_commit(study)
    return study


def _clean_enqueue(enqueue, *, space: list[dict], trainer, fixed: dict) -> list[dict]:
    from training.trainers.base import TrainerError

    if not enqueue:
        return []
    if not isinstance(enqueue, list) or not all(isinstance(item, dict) for item in enqueue):
        raise _invalid("a list of {name: value} configurations", "enqueue")
    names = {item["name"] for item in space}
    cleaned = []
    for params in enqueue:
        unknown = sorted(set(params) - names)
        if unknown:
            raise _invalid(f"{', '.join(unknown)} is not in the search space", "enqueue")
        if trainer is None:
            cleaned.append(dict(params))
            continue
        try:
            normalized = trainer.validate_hyperparameters({**fixed, **params})
        except TrainerError as error:
            raise _invalid(error.message, "enqueue") from None
        cleaned.append({key: normalized[key] for key in params})
    return cleaned


# --- control ---------------------------------------------------------------------------------------


def _locked(study: Study) -> Study:
    return Study.objects.select_for_update().get(pk=study.pk)


@transaction.atomic
def study_pause(*, user, study: Study, ip: str | None = None) -> Study:
    """Ask for no new trials; those running finish and are recorded."""
    require(user=user, project=study.project, action="training.run")
    study = _locked(study)
    if study.status != StudyStatus.RUNNING:
        raise ApplicationError(
            f"status: only a running study can be paused; this one is {study.status}.", status=409
        )
    study.status = StudyStatus.PAUSED
    study.save(update_fields=["status"])
    audit_record(user=user, project=study.project, action="training.study.pause", target=study, ip=ip)
    _publish_after_commit(study)
    return study


@transaction.atomic
def study_resume(*, user, study: Study, ip: str | None = None) -> Study:
    require(user=user, project=study.project, action="training.run")
    study = _locked(study)
    if study.status != StudyStatus.PAUSED:
        raise ApplicationError(
            f"status: only a paused study can be resumed; this one is {study.status}.", status=409
        )
    study.status = StudyStatus.RUNNING
    study.save(update_fields=["status"])
    audit_record(user=user, project=study.project, action="training.study.resume", target=study, ip=ip)
    _step_after_commit(study)
    return study


@transaction.atomic
def study_stop(*, user, study: Study, ip: str | None = None) -> Study:
    """Stop the study and its running trials' jobs (they end as failed trials)."""
    require(user=user, project=study.project, action="training.run")
    study = _locked(study)
    if study.status in (StudyStatus.STOPPED, StudyStatus.FINISHED, StudyStatus.FAILED):
        return study
    study.status = StudyStatus.STOPPED
    study.message = f"stopped by {getattr(user, 'username', 'someone')}"
    study.finished_at = timezone.now()
    study.save(update_fields=["status", "message", "finished_at"])
    _stop_running_jobs(study, user=user)
    audit_record(user=user, project=study.project, action="training.study.stop", target=study, ip=ip)
    _publish_after_commit(study)
    return study


@transaction.atomic
def study_extend(*, user, study: Study, n_trials: int, ip: str | None = None) -> Study:
    """Add trials to the budget; a finished study runs again."""
    require(user=user, project=study.project, action="training.run")
    if not isinstance(n_trials, int) or not 1 <= n_trials <= MAX_TRIALS:
        raise _invalid(f"between 1 and {MAX_TRIALS} more trials", "n_trials")
    study = _locked(study)
    if study.status in (StudyStatus.STOPPED, StudyStatus.FAILED):
        raise ApplicationError(f"status: a {study.status} study cannot be extended.", status=409)
    if study.sampler == StudySampler.GRID:
        raise ApplicationError("sampler: a grid study already covers its whole grid.", status=409)
    done = study.trials.count()
    study.n_trials = max(study.n_trials or 0, done) + n_trials
    if study.time_limit_s is not None:
        # The time limit counts from the (re)start: an extended study gets its full time again.
        study.started_at = timezone.now()
    if study.status == StudyStatus.FINISHED:
        study.status = StudyStatus.RUNNING
        study.finished_at = None
        study.message = ""
    study.save(update_fields=["n_trials", "status", "finished_at", "message", "started_at"])
    audit_record(
        user=user,
        project=study.project,
        action="training.study.extend",
        target=study,
        ip=ip,
        data={"n_trials": n_trials},
    )
    _step_after_commit(study)
    return study


def _stop_running_jobs(study: Study, *, user) -> None:
    from training.jobs import training_job_stop

    for trial in study.trials.filter(state=TrialState.RUNNING).select_related("job"):
        if trial.job is not None and trial.job.status not in JOB_FINAL:
            training_job_stop(user=user or trial.job.created_by, job=trial.job)


def _step_after_commit(study: Study) -> None:
    _enqueue_step(study.pk, study.template.get("queue") or "default")
    _publish_after_commit(study)


def _enqueue_step(study_id: int, queue: str) -> None:
    # A study's steps run on its trials' queue: the workers there are the ones set up for its jobs.
    from training.tasks import study_step_task

    transaction.on_commit(lambda: study_step_task.apply_async(kwargs={"study_id": study_id}, queue=queue))


def _publish_after_commit(study: Study, **extra) -> None:
    payload = {"id": study.pk, "status": study.status, **extra}
    project_id = study.project_id
    transaction.on_commit(lambda: events.publish(project_id=project_id, kind="study", payload=payload))


def study_trial_job_ended(job: TrainingJob) -> None:
    """Hook of jobs._finish: a trial's job ended, so the study settles it and asks for the next."""
    study_id = job.spec.get("study")
    if study_id is not None:
        _enqueue_step(study_id, job.queue)


def studies_sweep() -> int:
    """Enqueue a step for every running study: a safety net for a step message lost with its broker.

    Steps are idempotent, so a study that needs nothing just settles nothing and asks for nothing.
    """
    count = 0
    for study_id, template in Study.objects.filter(status=StudyStatus.RUNNING).values_list("pk", "template"):
        with transaction.atomic():
            _enqueue_step(study_id, template.get("queue") or "default")
        count += 1
    return count


# --- the ask-and-tell loop -------------------------------------------------------------------------


def study_step(*, study_id: int) -> None:
    """Settle ended trials, then ask for new ones while the study runs and budget is left.

    Harmless when repeated or redelivered: the Study row's lock makes steps of one study take turns,
    and every transition checks the state it starts from.
    """
    with transaction.atomic():
        study = (
            Study.objects.select_for_update(of=("self",))
            .select_related("project", "created_by")
            .filter(pk=study_id)
            .first()
        )
        if study is None:
            return
        before = (study.status, study.trials.count(), study.trials.filter(state=TrialState.RUNNING).count())
        if _settle(study):
            _update_importances(study)
        if study.status == StudyStatus.RUNNING:
            _ask(study)
        _finish_if_done(study)
        after = (study.status, study.trials.count(), study.trials.filter(state=TrialState.RUNNING).count())
        if after != before:
            _publish_after_commit(study)


def _settle(study: Study) -> bool:
    """Tell Optuna how the trials whose jobs ended did; return whether one of them completed."""
    running = list(
        study.trials.filter(state=TrialState.RUNNING, job__status__in=JOB_FINAL)
        .select_related("job")
        .order_by("number")
    )
    if not running:
        return False
    from optuna.trial import TrialState as OptunaState

    handle = optuna_study(study)
    for trial in running:
        job = trial.job
        trial.finished_at = job.finished_at or timezone.now()
        if job.status == JobStatus.FINISHED:
            value = (
                LatestMetric.objects.filter(run_id=job.run_id, key=study.objective_metric)
                .values_list("value", flat=True)
                .first()
            )
            if value is None:
                _objective_missing(study, trial, handle)
                continue
            if not math.isfinite(value):
                trial.state, trial.message = TrialState.FAILED, f"{study.objective_metric} was {value}"
                handle.tell(trial.number, state=OptunaState.FAIL, skip_if_finished=True)
            else:
                handle.tell(trial.number, value, skip_if_finished=True)
                trial.state, trial.value = TrialState.COMPLETE, value
        elif job.status == JobStatus.STOPPED and job.error_code == PRUNED_CODE:
            handle.tell(trial.number, state=OptunaState.PRUNED, skip_if_finished=True)
            frozen = optuna_storage().get_trial(trial.optuna_trial_id)
            trial.state, trial.value = TrialState.PRUNED, frozen.value
            if trial.pruned_at_step is None and frozen.intermediate_values:
                trial.pruned_at_step = max(frozen.intermediate_values)
        else:
            handle.tell(trial.number, state=OptunaState.FAIL, skip_if_finished=True)
            trial.state = TrialState.FAILED
            trial.message = (job.error or f"the job was {job.status}")[:1000]
        trial.save(update_fields=["state", "value", "pruned_at_step", "message", "finished_at"])
    return any(trial.state == TrialState.COMPLETE for trial in running)


def _update_importances(study: Study) -> None:
    """Recompute the fANOVA importance (seeded) once two trials are complete; here, not per page view."""
    import optuna

    if study.trials.filter(state=TrialState.COMPLETE).count() < 2:
        return
    try:
        importances = optuna.importance.get_param_importances(
            optuna_study(study), evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
    except (RuntimeError, ValueError):
        # e.g. every complete trial has the same value or params: no importance can be told apart.
        importances = {}
    study.importances = {name: float(value) for name, value in importances.items()}
    study.save(update_fields=["importances"])


def _objective_missing(study: Study, trial: StudyTrial, handle) -> None:
    from optuna.trial import TrialState as OptunaState

    handle.tell(trial.number, state=OptunaState.FAIL, skip_if_finished=True)
    logged = sorted(
        key
        for key in LatestMetric.objects.filter(run_id=trial.job.run_id).values_list("key", flat=True)
        if not key.startswith("system/")
    )
    trial.state = TrialState.FAILED
    trial.message = f"the run never logged {study.objective_metric!r}"
    trial.save(update_fields=["state", "message", "finished_at"])
    if study.trials.filter(value__isnull=False).exists():
        return  # other trials logged it: this one failed on its own
    study.status = StudyStatus.FAILED
    study.message = (
        f"The objective metric {study.objective_metric!r} was never logged by trial {trial.number} "
        f"(run #{trial.job.run_id}); it logged {', '.join(logged) or 'no metrics'}. "
        "The study stopped; create it again with one of those metrics."
    )[:1000]
    study.finished_at = timezone.now()
    study.save(update_fields=["status", "message", "finished_at"])
    _stop_running_jobs(study, user=study.created_by)


def _time_is_up(study: Study) -> bool:
    if study.time_limit_s is None:
        return False
    return (timezone.now() - study.started_at).total_seconds() >= study.time_limit_s


def _ask(study: Study) -> None:
    from optuna.trial import TrialState as OptunaState

    total = study.trials.count()
    running = study.trials.filter(state=TrialState.RUNNING).count()
    space = distributions(study.search_space)
    while running < study.parallelism and (study.n_trials is None or total < study.n_trials):
        if _time_is_up(study):
            return
        handle = optuna_study(study, draw=total)
        asked = handle.ask(space)
        try:
            with transaction.atomic():
                _submit_trial(study, asked)
        except ApplicationError as error:
            handle.tell(asked.number, state=OptunaState.FAIL, skip_if_finished=True)
            study.status = StudyStatus.FAILED
            study.message = f"trial {asked.number} could not be submitted: {error.message}"[:1000]
            study.finished_at = timezone.now()
            study.save(update_fields=["status", "message", "finished_at"])
            return
        except Exception:
            # Never leave an asked Optuna trial running without a job behind it.
            handle.tell(asked.number, state=OptunaState.FAIL, skip_if_finished=True)
            raise
        total += 1
        running += 1


def _submit_trial(study: Study, asked) -> StudyTrial:
    from datasets.models import DatasetVersion
    from training.jobs import training_job_submit, training_script_job_submit

    template = study.template
    params = dict(asked.params)
    trial = StudyTrial.objects.create(
        study=study, number=asked.number, optuna_trial_id=asked._trial_id, params=params
    )
    version = None
    if template.get("dataset_version_id") is not None:
        version = (
            DatasetVersion.objects.select_related("dataset").filter(pk=template["dataset_version_id"]).first()
        )
        if version is None:
            raise ApplicationError("dataset_version: the study's dataset version was deleted.", status=404)
    common = {
        "user": study.created_by,
        "project": study.project,
        "dataset_version": version,
        "hyperparameters": {**template.get("hyperparameters", {}), **params},
        "experiment": study.name,
        "name": f"{study.name} trial {asked.number}",
        "gpus": template.get("gpus") or 0,
        "time_limit_s": template.get("trial_time_limit_s"),
        "queue": template.get("queue"),
    }
    if template.get("kind") == "script":
        job = training_script_job_submit(
            filename=template["filename"], source=template["source"].encode("utf-8"), **common
        )
    else:
        job = training_job_submit(trainer=template["trainer"], target=template.get("target"), **common)
    # The job is queued when this transaction commits, so its runner already sees the trial in its spec.
    job.spec = {**job.spec, "study": study.pk, "study_trial": trial.pk}
    TrainingJob.objects.filter(pk=job.pk).update(spec=job.spec)
    tracking.run_set_tags(user=study.created_by, run=job.run, tags={"study": study.pk, "trial": asked.number})
    trial.job = job
    trial.save(update_fields=["job"])
    return trial


def _finish_if_done(study: Study) -> None:
    if study.trials.filter(state=TrialState.RUNNING).exists():
        return
    if study.status == StudyStatus.RUNNING:
        budget_spent = study.n_trials is not None and study.trials.count() >= study.n_trials
        if not (budget_spent or _time_is_up(study)):
            return
        study.status = StudyStatus.FINISHED
        study.message = "the trial budget is spent" if budget_spent else "the time limit was reached"
    if (
        study.status in (StudyStatus.FINISHED, StudyStatus.STOPPED, StudyStatus.FAILED)
        and study.finished_at is None
    ):
        study.finished_at = timezone.now()
    study.save(update_fields=["status", "message", "finished_at"])


# --- intermediate values (called by the job's runner) --------------------------------------------


def study_trial_report(*, trial_id: int, points: list[dict], may_prune: bool) -> int | None:
    """Report the objective's new points of a trial to Optuna; return the step when it is pruned.

    Called by training.runner after each epoch's metrics are stored. `may_prune` is False for the
    flush at the end of a training: a trial that already finished is not pruned afterwards.
    """
    trial = StudyTrial.objects.select_related("study").filter(pk=trial_id).first()
    if trial is None or trial.state != TrialState.RUNNING:
        return None
    study = trial.study
    values = [
        (int(point["step"]), float(point["value"]))
        for point in points
        if point["key"] == study.objective_metric
        and point.get("value") is not None
        and math.isfinite(point["value"])
    ]
    if not values:
        return None
    import optuna

    handle = optuna_study(study)
    optuna_trial = optuna.trial.Trial(handle, trial.optuna_trial_id)
    # A resumed job logs its last epoch again; Optuna keeps the first value of a step.
    reported = optuna_storage().get_trial(trial.optuna_trial_id).intermediate_values
    for step, value in sorted(values):
        if step not in reported:
            optuna_trial.report(value, step)
    last_step = max(step for step, _ in values)
    events.publish(
        project_id=study.project_id,
        kind="study",
        payload={"id": study.pk, "status": study.status, "trial": trial.number, "step": last_step},
    )
    if study.pruner == StudyPruner.NONE or not may_prune or not optuna_trial.should_prune():
        return None
    StudyTrial.objects.filter(pk=trial.pk).update(pruned_at_step=last_step)
    return last_step
