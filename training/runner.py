"""The training child process: `python -m training.runner <job id>` (or under torchrun for DDP).

It loads the job, drives the built-in trainer through a TrainerContext backed by the tracking
services and the artifact store, and writes its outcome to $STUDIO_JOB_RESULT for the supervisor.
"""

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path


def main(job_id: int) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models ship in packages; never download at run time
    import django

    django.setup()
    import torch
    import torch.distributed as dist

    from datasets import files
    from training.job_models import TrainingJob
    from training.trainers import get_trainer
    from training.trainers.base import TrainerError, TrainingData

    torch.set_num_threads(max(1, int(os.environ.get("STUDIO_TORCH_THREADS", "0")) or torch.get_num_threads()))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    use_cuda = torch.cuda.is_available() and bool(os.environ.get("CUDA_VISIBLE_DEVICES"))
    if world_size > 1:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        torch.use_deterministic_algorithms(True)  # a resumed job then repeats nothing it already did
    else:
        device = torch.device("cpu")

    job = TrainingJob.objects.select_related("run", "project", "created_by").get(pk=job_id)
    context = JobContext(job, device=device, rank=rank)
    stopping = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__("now", True))
    context.external_stop = stopping
    outcome = {"status": "finished"}
    try:
        if rank == 0:
            context.start()
        version = _dataset_version(job)
        data = TrainingData(
            parquet_path=files.local_path(version.storage_name),
            schema=version.columns,
            files_dir=files.local_path(version.files_prefix) if version.files_prefix else None,
        )
        print(
            f"training {job.spec['trainer']} on {version} ({version.row_count} rows) on {device}"
            f"{f' x{world_size} processes' if world_size > 1 else ''}",
            flush=True,
        )
        final = get_trainer(job.spec["trainer"]).fit(
            data, target=job.spec.get("target"), hyperparameters=job.spec["hyperparameters"], context=context
        )
        if rank == 0:
            context.finish(final or {})
        if world_size > 1:
            # Rank 0 still writes the model while the others are done: a rank that tears its gloo
            # group down meanwhile can abort ("terminate called without an active exception").
            dist.barrier()
        if context.pruned_at_step is not None:
            outcome = {"status": "pruned", "step": context.pruned_at_step}
        elif context.should_stop():
            outcome = {"status": "stopped"}
    except TrainerError as error:
        traceback.print_exc()
        if rank == 0:
            context.record_failure(error)  # a NaN loss becomes a point, and the flush below an insight
        outcome = {"status": "failed", "error": error.message, "error_code": error.code}
    except Exception as error:
        traceback.print_exc()
        outcome = {"status": "failed", "error": f"{type(error).__name__}: {error}", "error_code": "exception"}
    finally:
        if rank == 0:
            context.flush()
        if world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0 and os.environ.get("STUDIO_JOB_RESULT"):
        Path(os.environ["STUDIO_JOB_RESULT"]).write_text(json.dumps(outcome))
    print(
        f"job {job_id}: {outcome['status']}" + (f": {outcome.get('error')}" if outcome.get("error") else ""),
        flush=True,
    )
    return 0 if outcome["status"] in ("finished", "stopped", "pruned") else 1


def _dataset_version(job):
    from datasets.models import DatasetVersion

    return DatasetVersion.objects.select_related("dataset").get(pk=job.spec["dataset_version_id"])


from django.conf import settings  # noqa: E402  (configured by main() before use)


class JobContext:
    """The TrainerContext of a job: metrics and debugger data to tracking, checkpoints to the store."""

    def __init__(self, job, *, device, rank: int):
        self.job, self.device, self.rank = job, device, rank
        self.seed = int(job.spec["hyperparameters"].get("seed", 0) or 0)
        # A stable folder per job (kept across attempts on this host: the text trainer caches its
        # embeddings there); the model files in it become the run's artifacts.
        self.workdir = settings.STUDIO_DATA_DIR / "jobs" / str(job.pk)
        self.output_dir = self.workdir / "output"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.previous_checkpoint = ""
        self.stored_steps: dict[str, int] = {}  # key → last step already stored (set on resume)
        self.pending: list[dict] = []
        self.last_stop_check = 0.0
        self.stop_requested = False
        self.external_stop = {"now": False}
        self.checkpoint_prefix = f"projects/{job.project_id}/runs/{job.run_id}/checkpoints"
        # A trial of a hyperparameter study reports its objective after every flush (studies.py).
        self.study_trial_id = job.spec.get("study_trial")
        self.pruned_at_step: int | None = None
        self.is_finishing = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        from training import tracking

        tracking.run_update_status(user=self.job.created_by, run=self.job.run, status="running")
        from training.models import Run

        Run.objects.filter(pk=self.job.run_id).update(device=str(self.device))

    def finish(self, final_metrics: dict) -> None:
        from training import tracking

        self.is_finishing = True
        self.flush()
        for path in sorted(self.output_dir.rglob("*")):
            if path.is_file() and not path.name.startswith("embeddings."):  # a cache, not the model
                with path.open("rb") as handle:
                    tracking.artifact_upload(
                        user=self.job.created_by,
                        run=self.job.run,
                        path=f"model/{path.relative_to(self.output_dir).as_posix()}",
                        stream=handle,
                        expected_bytes=path.stat().st_size,
                    )

    # -- TrainerContext -------------------------------------------------------------------------
    def log_metrics(self, metrics: dict[str, float], *, step: int) -> None:
        if self.rank != 0:
            return
        now_ms = int(time.time() * 1000)
        # Held until the epoch's checkpoint (or the end): a resumed job then never logs a step twice,
        # and the run keeps one continuous metric history.
        self.pending += [
            {"key": key, "value": float(value), "step": step, "timestamp": now_ms}
            for key, value in metrics.items()
            if step > self.stored_steps.get(key, -1)
        ]

    def log_debug(self, kind: str, payload: dict, *, step: int) -> None:
        if self.rank != 0:
            return
        if kind == "gradient_norms":
            self.log_metrics(
                {
                    f"debug/grad_norm/{layer}": value
                    for layer, value in payload.items()
                    if isinstance(value, int | float)
                },
                step=step,
            )
        elif kind == "learning_rate":
            return  # the trainers log it as a metric already
        else:
            import io

            from training import tracking

            body = json.dumps({"kind": kind, "step": step, **payload}).encode()
            tracking.artifact_upload(
                user=self.job.created_by,
                run=self.job.run,
                path=f"debugger/{kind}/step-{step:06d}.json",
                stream=io.BytesIO(body),
                expected_bytes=len(body),
            )

    def flush(self) -> None:
        from training import tracking

        if self.pending:
            points, self.pending = self.pending, []
            tracking.run_log_metrics(user=self.job.created_by, run=self.job.run, metrics=points)
            self.report_to_study(points)
            self.evaluate_insights()

    def report_to_study(self, points: list[dict]) -> None:
        """Feed a study trial's pruner; when it says prune, should_stop() ends the training."""
        if not self.study_trial_id or self.pruned_at_step is not None:
            return
        from training.studies import study_trial_report

        try:
            step = study_trial_report(
                trial_id=self.study_trial_id, points=points, may_prune=not self.is_finishing
            )
        except Exception:
            # The study's bookkeeping must not fail a training that is otherwise fine.
            traceback.print_exc()
            print("could not report this epoch to the study", flush=True)
            return
        if step is not None:
            self.pruned_at_step = step
            print(f"pruned by the study at step {step}", flush=True)

    def record_failure(self, error: Exception) -> None:
        """Log what a trainer's failure says about the run, for main() to flush with the rest.

        A diverged loss becomes a NaN point of `train_loss` at its epoch: the curve shows where it
        broke, and the debugger's non-finite-loss rule posts its insight on the flush.
        """
        from training.trainers.base import TrainingDiverged

        if self.rank == 0 and isinstance(error, TrainingDiverged):
            self.log_metrics({"train_loss": float("nan")}, step=error.epoch)

    def evaluate_insights(self) -> None:
        """Apply the debugger's rules to the run as it stands after this epoch's metrics."""
        from training.insights import run_insights_evaluate

        try:
            run_insights_evaluate(run=self.job.run)
        except Exception:
            # A fault in a rule must not fail a training that is otherwise fine; the log shows it.
            traceback.print_exc()
            print("the debugger's rules could not be applied to this epoch", flush=True)

    def save_checkpoint(self, state: dict, *, epoch: int) -> None:
        """Store the state (safetensors + JSON, no pickle) under the run, then point `latest` at it."""
        from datasets import files
        from training.trainers.checkpoints import state_to_bytes

        if self.rank != 0:
            return
        self.flush()  # metrics up to this epoch are durable before the checkpoint says so
        tensor_bytes, meta_bytes = state_to_bytes(state)
        folder = f"{self.checkpoint_prefix}/epoch-{epoch:06d}"
        scratch = self.workdir / "checkpoint"
        scratch.mkdir(exist_ok=True)
        for name, payload in (("state.safetensors", tensor_bytes), ("state.json", meta_bytes)):
            (scratch / name).write_bytes(payload)
            files.store_file(f"{folder}/{name}", scratch / name)
        (scratch / "latest.json").write_text(json.dumps({"epoch": epoch, "folder": folder}))
        files.store_file(f"{self.checkpoint_prefix}/latest.json", scratch / "latest.json")
        if self.previous_checkpoint and self.previous_checkpoint != folder:
            files.delete_prefix(self.previous_checkpoint)
        self.previous_checkpoint = folder

    def load_checkpoint(self):
        from datasets import files
        from studio.storage import artifact_storage
        from training.trainers.checkpoints import state_from_bytes

        pointer = f"{self.checkpoint_prefix}/latest.json"
        if not artifact_storage().exists(pointer):
            return None
        latest = json.loads(files.local_path(pointer).read_text())
        folder = latest["folder"]
        state = state_from_bytes(
            files.local_path(f"{folder}/state.safetensors").read_bytes(),
            files.local_path(f"{folder}/state.json").read_bytes(),
        )
        self.previous_checkpoint = folder
        print(f"resuming from the checkpoint of epoch {latest['epoch']}", flush=True)
        # A worker killed between an epoch's metric flush and its checkpoint leaves that epoch's
        # points stored; the resumed epoch repeats them (deterministically), so they are not sent again.
        from django.db.models import Max

        from training.models import Metric

        self.stored_steps = dict(
            Metric.objects.filter(run_id=self.job.run_id)
            .exclude(key__startswith="system/")
            .values("key")
            .annotate(last=Max("step"))
            .values_list("key", "last")
        )
        return state, int(latest["epoch"])

    def should_stop(self) -> bool:
        if self.external_stop["now"] or self.pruned_at_step is not None:
            return True
        now = time.monotonic()
        if now - self.last_stop_check >= 1.0:
            from training.job_models import TrainingJob

            self.last_stop_check = now
            self.stop_requested = TrainingJob.objects.filter(pk=self.job.pk, is_stop_requested=True).exists()
        return self.stop_requested

    def progress(self, fraction: float, message: str = "") -> None:
        if self.rank != 0:
            return
        from studio.projects import events
        from training.job_models import TrainingJob

        TrainingJob.objects.filter(pk=self.job.pk).update(progress=round(fraction, 4), message=message[:300])
        events.publish(
            project_id=self.job.project_id,
            kind="training_job",
            payload={
                "id": self.job.pk,
                "run_id": self.job.run_id,
                "status": "running",
                "progress": fraction,
                "message": message,
            },
        )


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
