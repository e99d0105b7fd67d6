"""Training jobs: submit, stop, and the supervisor a Celery worker runs for each job.

The worker claims the job (a guarded transition), starts `python -m training.runner <job id>` in a
process group of its own, streams its output into the run's log, samples CPU/GPU/memory, beats a
heartbeat and stops the process group on request or at the time limit. A beat task marks jobs whose
heartbeat stopped as lost and queues them again; the runner resumes from the last checkpoint.
"""

import ast
import contextlib
import io
import logging
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from studio.audit.services import audit_record
from studio.errors import ApplicationError
from studio.projects import events
from studio.projects.access import require
from training import tracking
from training.job_models import JobStatus, RunLogChunk, TrainingJob
from training.models import Run, RunSource, RunStatus

logger = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
STOP_GRACE_S = 5.0
LOG_FLUSH_S = 1.0
FINAL = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED}


def job_dir(job: TrainingJob) -> Path:
    path = settings.STUDIO_DATA_DIR / "jobs" / str(job.pk)
    path.mkdir(parents=True, exist_ok=True)
    return path


@transaction.atomic
def training_job_submit(
    *,
    user,
    project,
    trainer: str,
    dataset_version,
    target: str | None = None,
    hyperparameters=None,
    experiment: str = "default",
    name: str = "",
    gpus: int = 0,
    processes: int = 1,
    time_limit_s: int | None = None,
    queue: str | None = None,
    ip: str | None = None,
) -> TrainingJob:
    """Validate a built-in trainer job and queue it (the `gpu` queue when it asks for GPUs)."""
    from training.trainers import get_trainer
    from training.trainers.base import TrainerError

    require(user=user, project=project, action="training.run")
    if dataset_version.dataset.project_id != project.pk:
        raise ApplicationError("dataset_version: no such dataset version in this project.", status=404)
    try:
        trainer_impl = get_trainer(trainer)
        normalized = trainer_impl.validate(
            schema=dataset_version.columns, target=target, hyperparameters=hyperparameters or {}
        )
        target = trainer_impl.resolve_target(dataset_version.columns, target)
    except TrainerError as error:
        raise ApplicationError(error.message, code=error.code, extra={"field": error.field}) from None
    return _job_create(
        user=user,
        project=project,
        spec={
            "kind": "trainer",
            "trainer": trainer,
            "dataset_version_id": dataset_version.pk,
            "target": target,
            "hyperparameters": normalized,
            "processes": processes,
        },
        run_params=normalized,
        dataset_version=dataset_version,
        source=RunSource.TRAINER,
        trainer=trainer,
        experiment=experiment,
        name=name,
        gpus=gpus,
        processes=processes,
        time_limit_s=time_limit_s,
        queue=queue,
        ip=ip,
    )


SCRIPT_SUFFIXES = (".py", ".ipynb")
HYPERPARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@transaction.atomic
def training_script_job_submit(
    *,
    user,
    project,
    filename: str,
    source: bytes,
    dataset_version=None,
    hyperparameters=None,
    experiment: str = "default",
    name: str = "",
    gpus: int = 0,
    processes: int = 1,
    time_limit_s: int | None = None,
    queue: str | None = None,
    ip: str | None = None,
) -> TrainingJob:
    """Queue the user's own Python script or notebook as a job (SageMaker's "script mode").

    The file is checked before anything is stored (a syntax error or a broken notebook is a 400 that
    names the line), kept as the run's `code/<filename>` artifact, and run by `training.script_runner`
    with the hyperparameters as `--name value` arguments (papermill parameters for a notebook).
    """
    require(user=user, project=project, action="training.run")
    filename = _script_filename(filename)
    _check_script(filename, source)
    hyperparameters = _script_hyperparameters(hyperparameters)
    if dataset_version is not None and dataset_version.dataset.project_id != project.pk:
        raise ApplicationError("dataset_version: no such dataset version in this project.", status=404)
    is_notebook = filename.endswith(".ipynb")
    if is_notebook and (processes > 1 or gpus > 1):
        raise ApplicationError(
            "processes: a notebook runs in one kernel; use a script for distributed training.",
            extra={"field": "processes"},
        )
    job = _job_create(
        user=user,
        project=project,
        spec={
            "kind": "notebook" if is_notebook else "script",
            "filename": filename,
            "dataset_version_id": dataset_version.pk if dataset_version else None,
            "hyperparameters": hyperparameters,
            "processes": processes,
        },
        run_params=hyperparameters,
        dataset_version=dataset_version,
        source=RunSource.NOTEBOOK if is_notebook else RunSource.SCRIPT,
        trainer="",
        experiment=experiment,
        name=name or filename.rsplit(".", 1)[0],
        gpus=gpus,
        processes=processes,
        time_limit_s=time_limit_s,
        queue=queue,
        ip=ip,
    )
    tracking.artifact_upload(
        user=user, run=job.run, path=f"code/{filename}", stream=io.BytesIO(source), expected_bytes=len(source)
    )
    return job


def _script_filename(filename) -> str:
    name = Path(str(filename or "")).name.strip()
    if not name or not name.endswith(SCRIPT_SUFFIXES):
        raise ApplicationError(
            f"script: {name or 'the file'!r} is neither a Python script (.py) nor a notebook (.ipynb).",
            code="invalid_script",
            extra={"field": "script"},
        )
    if len(name) > 200 or not re.fullmatch(r"[\w.\- ]+", name):
        raise ApplicationError(
            "script: use a file name of letters, digits, spaces, dots, dashes and underscores.",
            code="invalid_script",
            extra={"field": "script"},
        )
    return name


def _check_script(filename: str, source: bytes) -> None:
    def invalid(message: str) -> ApplicationError:
        return ApplicationError(f"script: {message}", code="invalid_script", extra={"field": "script"})

    if not source:
        raise invalid(f"{filename} is empty.")
    if len(source) > settings.STUDIO_MAX_SCRIPT_BYTES:
        raise invalid(f"{filename} is over the limit of {settings.STUDIO_MAX_SCRIPT_BYTES} bytes.")
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid(f"{filename} is not UTF-8 text.") from None
    if filename.endswith(".py"):
        try:
            ast.parse(text, filename=filename)
        except SyntaxError as error:
            raise invalid(f"{filename} line {error.lineno}: SyntaxError: {error.msg}.") from None
        return
    import nbformat

    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises several types (JSON, schema) for a broken notebook
        raise invalid(f"{filename} is not a valid notebook: {str(error).splitlines()[0][:300]}") from None
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        try:
            ast.parse(_without_magics(cell.source))
        except SyntaxError as error:
            raise invalid(f"{filename} cell {index} line {error.lineno}: SyntaxError: {error.msg}.") from None


def _without_magics(source: str) -> str:
    # IPython magics (%pip, !ls) are valid in a kernel but not Python: blank them before parsing.
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _script_hyperparameters(hyperparameters) -> dict:
    hyperparameters = hyperparameters or {}
    if not isinstance(hyperparameters, dict):
        raise ApplicationError(
            "hyperparameters: an object of name → value.", extra={"field": "hyperparameters"}
        )
    cleaned = {}
    for key, value in hyperparameters.items():
        if not isinstance(key, str) or not HYPERPARAMETER_NAME.match(key):
            raise ApplicationError(
                f"hyperparameters: {key!r} is not a valid name (letters, digits and _, not starting "
                "with a digit).",
                extra={"field": "hyperparameters"},
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ApplicationError(
                f"hyperparameters: {key} must be a finite number.", extra={"field": "hyperparameters"}
            )
        if not isinstance(value, str | int | float | bool) or (isinstance(value, str) and len(value) > 1000):
            raise ApplicationError(
                f"hyperparameters: {key} must be a string (at most 1000 characters), a number or a boolean.",
                extra={"field": "hyperparameters"},
            )
        cleaned[key] = value
    return cleaned


def _job_create(
    *,
    user,
    project,
    spec: dict,
    run_params: dict,
    dataset_version,
    source: str,
    trainer: str,
    experiment: str,
    name: str,
    gpus: int,
    processes: int,
    time_limit_s: int | None,
    queue: str | None,
    ip: str | None,
) -> TrainingJob:
    queue = queue or ("gpu" if gpus else "default")
    if queue not in settings.STUDIO_TRAINING_QUEUES:
        raise ApplicationError(
            f"queue: {queue!r} is not one of {', '.join(settings.STUDIO_TRAINING_QUEUES)}.",
            extra={"field": "queue"},
        )
    if gpus < 0 or processes < 1 or processes > 8:
        raise ApplicationError("processes: between 1 and 8.", extra={"field": "processes"})
    if time_limit_s is not None and not 1 <= time_limit_s <= settings.STUDIO_LONGEST_JOB_S:
        raise ApplicationError(
            f"time_limit_s: between 1 and {settings.STUDIO_LONGEST_JOB_S} seconds.",
            extra={"field": "time_limit_s"},
        )
    experiment_row = tracking.experiment_get_or_create(user=user, project=project, name=experiment, ip=ip)
    run = tracking.run_create(
        user=user,
        project=project,
        experiment=experiment_row,
        name=name,
        params=dict(run_params),
        dataset_version=dataset_version,
        source=source,
        trainer=trainer,
        ip=ip,
    )
    job = TrainingJob(
        project=project,
        run=run,
        created_by=user,
        queue=queue,
        gpus=gpus,
        spec=spec,
        time_limit_s=time_limit_s or settings.STUDIO_LONGEST_JOB_S,
    )
    job.full_clean()
    job.save()
    audit_record(
        user=user,
        project=project,
        action="training.job.submit",
        target=job,
        ip=ip,
        data={"kind": spec["kind"], "trainer": trainer, "filename": spec.get("filename", ""), "run": run.pk},
    )
    transaction.on_commit(lambda: _enqueue(job))
    return job


def _enqueue(job: TrainingJob) -> None:
    from training.tasks import training_job_task

    training_job_task.apply_async(kwargs={"job_id": job.pk}, queue=job.queue)


@transaction.atomic
def training_job_stop(*, user, job: TrainingJob, ip: str | None = None) -> TrainingJob:
    require(user=user, project=job.project, action="training.run")
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    if job.status in FINAL:
        return job
    if job.status in (JobStatus.QUEUED, JobStatus.LOST):
        # Nobody runs it: stop it here; a message still in the queue finds it final and does nothing.
        _finish(job, JobStatus.STOPPED, error="", code="")
    else:
        job.is_stop_requested = True
        job.save(update_fields=["is_stop_requested"])
    audit_record(user=user, project=job.project, action="training.job.stop", target=job, ip=ip)
    return job


def _finish(job: TrainingJob, status: str, *, error: str, code: str) -> None:
    TrainingJob.objects.filter(pk=job.pk).update(
        status=status, error=error[:5000], error_code=code[:50], finished_at=timezone.now(), pid=None
    )
    if job.spec.get("kind") in ("script", "notebook"):
        from training.script_runner import job_token_revoke

        job_token_revoke(job)  # also when the runner itself was killed before it could
    run_status = {JobStatus.FINISHED: RunStatus.FINISHED, JobStatus.STOPPED: RunStatus.STOPPED}.get(
        status, RunStatus.FAILED
    )
    Run.objects.filter(pk=job.run_id).exclude(
        status__in=[RunStatus.FINISHED, RunStatus.FAILED, RunStatus.STOPPED]
    ).update(status=run_status, ended_at=timezone.now())
    events.publish(
        project_id=job.project_id,
        kind="training_job",
        payload={"id": job.pk, "run_id": job.run_id, "status": status, "error": error[:500]},
    )
    if job.spec.get("study_trial"):
        from training.studies import study_trial_job_ended

        study_trial_job_ended(job)  # the study records the trial and asks for the next one


def _claim(job_id: int, worker_host: str) -> TrainingJob | None:
    """Take the job if it is queued; a job running elsewhere with a fresh heartbeat is never taken."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != JobStatus.QUEUED:
            return None
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.worker_host = worker_host
        job.heartbeat_at = timezone.now()
        job.started_at = job.started_at or timezone.now()
        job.save(update_fields=["status", "attempts", "worker_host", "heartbeat_at", "started_at"])
        Run.objects.filter(pk=job.run_id).update(worker_host=worker_host)
    events.publish(
        project_id=job.project_id,
        kind="training_job",
        payload={"id": job.pk, "run_id": job.run_id, "status": "running", "attempt": job.attempts},
    )
    return job


def _child_command(job: TrainingJob) -> list[str]:
    if job.spec.get("kind") in ("script", "notebook"):
        # The script runner prepares inputs and a job token, then runs the user's code (under
        # torchrun itself when it asks for several processes).
        return [sys.executable, "-m", "training.script_runner", str(job.pk)]
    processes = max(job.gpus, int(job.spec.get("processes", 1)))
    if processes > 1:
        port = _free_port()
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={processes}",
            "--master_addr=127.0.0.1",
            f"--master_port={port}",
            "-m",
            "training.runner",
            str(job.pk),
        ]
    return [sys.executable, "-m", "training.runner", str(job.pk)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # Runs in the child before exec: its own process group (so stop kills the whole tree) and a
    # SIGKILL when the worker process dies, so a killed worker never leaves a training orphan behind.
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class _LogPump(threading.Thread):
    """Copies the child's output into the run's log chunks and live events, once a second."""

    def __init__(self, job: TrainingJob, stream):
        super().__init__(daemon=True)
        self.job, self.stream, self.lines, self.lock = job, stream, [], threading.Lock()
        self.tail: list[str] = []

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                self.lines.append(line)
            self.tail = (self.tail + [line])[-40:]

    def flush(self) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
        if not lines:
            return
        text = "\n".join(lines) + "\n"
        RunLogChunk.objects.create(run_id=self.job.run_id, text=text[:1_000_000])
        events.publish(
            project_id=self.job.project_id,
            kind="run_log",
            payload={"run_id": self.job.run_id, "text": text[-20_000:]},
        )


class _SystemSampler:
    """CPU %, memory and (through NVML, when present) GPU utilisation of the job's process tree."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.started = time.monotonic()
        self.nvml = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
        except Exception:  # no NVIDIA driver on this host: CPU and memory only
            self.nvml = None

    def sample(self) -> list[dict]:
        import psutil

        try:
            processes = [self.root, *self.root.children(recursive=True)]
            cpu = sum(process.cpu_percent(None) for process in processes)
            rss = sum(process.memory_info().rss for process in processes)
        except psutil.Error:
            return []
        step = int(time.monotonic() - self.started)
        points = [
            {"key": "system/cpu_percent", "value": cpu, "step": step},
            {"key": "system/memory_mb", "value": rss / 2**20, "step": step},
        ]
        if self.nvml is not None:
            try:
                for index in range(self.nvml.nvmlDeviceGetCount()):
                    handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
                    utilization = self.nvml.nvmlDeviceGetUtilizationRates(handle)
                    memory = self.nvml.nvmlDeviceGetMemoryInfo(handle)
                    points.append(
                        {"key": f"system/gpu{index}_utilization", "value": utilization.gpu, "step": step}
                    )
                    points.append(
                        {"key": f"system/gpu{index}_memory_mb", "value": memory.used / 2**20, "step": step}
                    )
            except Exception:
                logger.debug("NVML sample failed", exc_info=True)
        return points


def training_job_execute(*, job_id: int, worker_host: str | None = None) -> None:
    """Supervise one job in a child process (the Celery task's body). Harmless when redelivered."""
    worker_host = worker_host or socket.gethostname()
    job = _claim(job_id, worker_host)
    if job is None:
        return
    workdir = job_dir(job)
    result_file = workdir / f"result-{job.attempts}.json"
    env = dict(os.environ, STUDIO_JOB_RESULT=str(result_file), PYTHONUNBUFFERED="1")
    if job.gpus:
        env.setdefault("CUDA_VISIBLE_DEVICES", ",".join(str(index) for index in range(job.gpus)))
        # Deterministic cuBLAS, so that a resumed job continues exactly where it stopped.
        env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    child = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
        _child_command(job),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=settings.BASE_DIR,
        preexec_fn=_die_with_parent,  # noqa: PLW1509
    )
    TrainingJob.objects.filter(pk=job.pk).update(pid=child.pid)
    pump = _LogPump(job, child.stdout)
    pump.start()
    sampler = _SystemSampler(child.pid)
    deadline = time.monotonic() + job.time_limit_s
    stop_reason = ""
    last_beat = last_flush = 0.0
    while child.poll() is None:
        now = time.monotonic()
        if now - last_flush >= LOG_FLUSH_S:
            pump.flush()
            last_flush = now
        if now - last_beat >= HEARTBEAT_S:
            last_beat = now
            TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
            points = sampler.sample()
            if points:
                try:
                    tracking.run_log_metrics(user=job.created_by, run=job.run, metrics=points)
                except Exception:
                    logger.warning("could not record system metrics of job %s", job.pk, exc_info=True)
            if not stop_reason and TrainingJob.objects.filter(pk=job.pk, is_stop_requested=True).exists():
                stop_reason = "stopped"
                _terminate(child)
        if not stop_reason and now > deadline:
            stop_reason = "time_limit"
            _terminate(child)
        time.sleep(0.2)
    pump.join(timeout=5)
    pump.flush()
    _settle(job, child.returncode, result_file, stop_reason, tail=pump.tail)
    shutil.rmtree(workdir, ignore_errors=True)  # the model and checkpoints are in the artifact store


def _terminate(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


def _settle(
    job: TrainingJob, returncode: int, result_file: Path, stop_reason: str, *, tail: list[str]
) -> None:
    import json

    result = {}
    if result_file.exists():
        try:
            result = json.loads(result_file.read_text())
        except ValueError:
            result = {}
    if stop_reason == "stopped":
        _finish(job, JobStatus.STOPPED, error="", code="")
    elif stop_reason == "time_limit":
        _finish(
            job,
            JobStatus.FAILED,
            error=f"The job ran past its time limit of {job.time_limit_s} s.",
            code="time_limit",
        )
    elif returncode == 0 and result.get("status") == "pruned":
        # A study's pruner stopped this trial early (training/studies.py): stopped, not failed.
        _finish(job, JobStatus.STOPPED, error="", code="pruned")
    elif returncode == 0 and result.get("status") == "finished":
        _finish(job, JobStatus.FINISHED, error="", code="")
    else:
        error = result.get("error") or (
            "\n".join(tail[-15:]) or f"the training process exited with {returncode}"
        )
        _finish(job, JobStatus.FAILED, error=error, code=result.get("error_code") or "process_failed")


def training_jobs_reap(*, heartbeat_timeout_s: float) -> int:
    """Mark running jobs whose heartbeat stopped as lost; queue them again while attempts remain."""
    cutoff = timezone.now() - timedelta(seconds=heartbeat_timeout_s)
    reaped = 0
    for job_id in TrainingJob.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            job = TrainingJob.objects.select_for_update().get(pk=job_id)
            if job.status != JobStatus.RUNNING or job.heartbeat_at >= cutoff:
                continue
            reaped += 1
            if job.attempts >= job.max_attempts:
                transaction.on_commit(
                    lambda job=job: _finish(
                        job,
                        JobStatus.FAILED,
                        code="lost",
                        error=f"The worker running this job vanished {job.attempts} times; giving up.",
                    )
                )
                continue
            job.status = JobStatus.QUEUED
            job.pid = None
            job.message = f"worker {job.worker_host} vanished; queued again (attempt {job.attempts + 1})"
            job.save(update_fields=["status", "pid", "message"])
            audit_record(
                user=None,
                project=job.project,
                action="training.job.requeue",
                target=job,
                data={"attempts": job.attempts},
            )
            transaction.on_commit(lambda job=job: _enqueue(job))
    return reaped
