"""The child process of a script job: `python -m training.script_runner <job id>`.

It lays out the job's folder (the user's code, the dataset version's files, an empty model folder),
mints a job token, and runs the user's script (or notebook, through papermill) as its own child with
a scrubbed environment: the worker's secrets (SECRET_KEY, DATABASE_URL, REDIS_URL, ...) never reach
user code; `studio_sdk` is configured by STUDIO_URL / STUDIO_TOKEN / STUDIO_PROJECT / STUDIO_RUN_ID.

The layout follows SageMaker's script mode, so scripts port with a rename of the variables:

    STUDIO_DATASET_DIR   the dataset version: data.parquet (and files/ for image datasets)
    STUDIO_MODEL_DIR     write the model here; its files become the run's `model/` artifacts
    STUDIO_OUTPUT_DIR    anything else worth keeping; becomes the run's `output/` artifacts
    STUDIO_HYPERPARAMETERS  the hyperparameters as JSON (also passed as `--name value` arguments)

The token is scoped to the job's project, expires with the job's time limit and is revoked when the
job ends (here, and by the supervisor if this process was killed).
"""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

TOKEN_NAME = "training job {job_id}"  # noqa: S105 (a name pattern, not a secret)
# Environment variables a script inherits from the worker; everything else is left behind.
PASSED_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "CUDA_VISIBLE_DEVICES",
    "CUBLAS_WORKSPACE_CONFIG",
    "NVIDIA_VISIBLE_DEVICES",
)
EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception|Interrupt|Exit)\b.*")
TAIL_LINES = 60


def main(job_id: int) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    import django

    django.setup()
    from django.conf import settings

    from training.job_models import TrainingJob

    job = TrainingJob.objects.select_related("run", "project", "created_by").get(pk=job_id)
    workdir = settings.STUDIO_DATA_DIR / "jobs" / str(job.pk)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    outcome = {"status": "finished"}
    try:
        layout = _prepare(job, workdir)
        command = _command(job, layout)
        env = _script_env(job, layout, token=_token_create(job))
        _run_started(job)
        print(f"running {job.spec['filename']} ({job.spec['kind']}) in {layout['code']}", flush=True)
        returncode, tail = _run(command, env=env, cwd=layout["code"], stop=stop)
        if stop["now"]:
            outcome = {"status": "stopped"}
        else:
            if returncode != 0:
                outcome = {"status": "failed", **_failure(job, returncode, tail)}
            # The output folder also on failure: an executed notebook shows the cell that failed.
            _store_outputs(job, layout, with_model=returncode == 0)
    except Exception as error:
        import traceback

        traceback.print_exc()
        outcome = {"status": "failed", "error": f"{type(error).__name__}: {error}", "error_code": "exception"}
    finally:
        job_token_revoke(job)
    if os.environ.get("STUDIO_JOB_RESULT"):
        Path(os.environ["STUDIO_JOB_RESULT"]).write_text(json.dumps(outcome))
    print(
        f"job {job_id}: {outcome['status']}" + (f": {outcome.get('error')}" if outcome.get("error") else ""),
        flush=True,
    )
    return 0 if outcome["status"] in ("finished", "stopped") else 1


def _prepare(job, workdir: Path) -> dict[str, Path]:
    from datasets import files

    layout = {name: workdir / name for name in ("code", "input", "model", "output", "home", "tmp")}
    for path in layout.values():
        path.mkdir(parents=True, exist_ok=True)
    filename = job.spec["filename"]
    script = files.local_path(f"{job.run.storage_prefix}/artifacts/code/{filename}")
    (layout["code"] / filename).write_bytes(script.read_bytes())
    version_id = job.spec.get("dataset_version_id")
    if version_id:
        from datasets.models import DatasetVersion

        version = DatasetVersion.objects.get(pk=version_id)
        _link(layout["input"] / "data.parquet", files.local_path(version.storage_name))
        if version.files_prefix:
            _link(layout["input"] / "files", files.local_path(version.files_prefix))
        (layout["input"] / "schema.json").write_text(json.dumps(version.columns, indent=1))
    return layout


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def _command(job, layout: dict[str, Path]) -> list[str]:
    filename = job.spec["filename"]
    hyperparameters = job.spec.get("hyperparameters") or {}
    if job.spec["kind"] == "notebook":
        # A JSON file is YAML too: numbers stay numbers and strings strings in the injected cell.
        parameters = layout["tmp"] / "parameters.json"
        parameters.write_text(json.dumps(hyperparameters))
        return [
            sys.executable,
            "-m",
            "papermill",
            "--log-output",
            "--no-progress-bar",
            "--kernel",
            "python3",
            "--language",
            "python",
            "--cwd",
            str(layout["code"]),
            "--parameters_file",
            str(parameters),
            filename,
            str(layout["output"] / f"executed-{filename}"),
        ]
    arguments = []
    for key, value in hyperparameters.items():
        arguments += [f"--{key}", json.dumps(value) if isinstance(value, bool) else str(value)]
    processes = max(job.gpus, int(job.spec.get("processes", 1)))
    if processes > 1:
        with __import__("socket").socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={processes}",
            "--master_addr=127.0.0.1",
            f"--master_port={port}",
            filename,
            *arguments,
        ]
    return [sys.executable, filename, *arguments]


def _script_env(job, layout: dict[str, Path], *, token: str) -> dict[str, str]:
    from django.conf import settings

    env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    hyperparameters = job.spec.get("hyperparameters") or {}
    env.update(
        HOME=str(layout["home"]),
        TMPDIR=str(layout["tmp"]),
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        MPLBACKEND="Agg",
        STUDIO_URL=settings.STUDIO_API_URL,
        STUDIO_TOKEN=token,
        STUDIO_PROJECT=str(job.project_id),
        STUDIO_RUN_ID=str(job.run_id),
        STUDIO_JOB_ID=str(job.pk),
        STUDIO_DATASET_DIR=str(layout["input"]),
        STUDIO_MODEL_DIR=str(layout["model"]),
        STUDIO_OUTPUT_DIR=str(layout["output"]),
        STUDIO_HYPERPARAMETERS=json.dumps(hyperparameters),
        STUDIO_NUM_GPUS=str(job.gpus),
    )
    if job.spec.get("dataset_version_id"):
        env["STUDIO_DATASET_VERSION_ID"] = str(job.spec["dataset_version_id"])
    env.setdefault("PATH", "/usr/bin:/bin")
    return env


def _token_create(job) -> str:
    from django.utils import timezone

    from studio.accounts.services import api_token_create

    job_token_revoke(job)  # a previous attempt's token, if its runner was killed
    _token, raw = api_token_create(
        user=job.created_by,
        name=TOKEN_NAME.format(job_id=job.pk),
        project=job.project,
        expires_at=timezone.now() + timedelta(seconds=job.time_limit_s + 300),
    )
    return raw


def job_token_revoke(job) -> None:
    """Revoke the tokens minted for this job (idempotent; the supervisor calls it when a job ends)."""
    from django.utils import timezone

    from studio.accounts.models import ApiToken

    if job.created_by_id is None:
        return
    ApiToken.objects.filter(
        user_id=job.created_by_id, name=TOKEN_NAME.format(job_id=job.pk), revoked_at__isnull=True
    ).update(revoked_at=timezone.now())


def _run_started(job) -> None:
    from training import tracking
    from training.models import Run

    tracking.run_update_status(user=job.created_by, run=job.run, status="running")
    Run.objects.filter(pk=job.run_id).update(device="cuda" if job.gpus else "cpu")


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _run(command: list[str], *, env: dict, cwd: Path, stop: dict) -> tuple[int, list[str]]:
    """Run the user's code, copying its output to ours (the supervisor's log) and keeping a tail."""
    child = subprocess.Popen(  # noqa: S603 (the interpreter and the job's own file, no shell)
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        preexec_fn=_die_with_parent,  # noqa: PLW1509
    )
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    for raw in iter(child.stdout.readline, b""):
        line = raw.decode("utf-8", "replace")
        sys.stdout.write(line)
        sys.stdout.flush()
        tail.append(line.rstrip("\n"))
    while child.poll() is None:
        time.sleep(0.05)
    return child.returncode, list(tail)


def _failure(job, returncode: int, tail: list[str]) -> dict:
    """The job's error: the script's exception line when there is one (the traceback is in the log)."""
    exception = next((line.strip() for line in reversed(tail) if EXCEPTION_LINE.match(line.strip())), "")
    where = job.spec["filename"]
    if exception:
        return {
            "error": f"{where} failed: {exception} (the traceback is in the log)",
            "error_code": "script_failed",
        }
    if returncode < 0:
        return {"error": f"{where} was killed by signal {-returncode}", "error_code": "script_killed"}
    return {"error": f"{where} exited with status {returncode}", "error_code": "script_failed"}


def _store_outputs(job, layout: dict[str, Path], *, with_model: bool) -> None:
    from training import tracking

    for folder in ("model", "output") if with_model else ("output",):
        for path in sorted(layout[folder].rglob("*")):
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as handle:
                    tracking.artifact_upload(
                        user=job.created_by,
                        run=job.run,
                        path=f"{folder}/{path.relative_to(layout[folder]).as_posix()}",
                        stream=handle,
                        expected_bytes=path.stat().st_size,
                    )


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
