"""The Celery app: queues `default` (CPU) and `gpu`, JSON only, configured from Django settings."""

import os

from celery import Celery
from celery.signals import worker_process_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("gpu"))
app.autodiscover_tasks()
# Periodic housekeeping; beat's DatabaseScheduler copies these into django-celery-beat's tables,
# where an administrator can change or pause them.
app.conf.beat_schedule = {
    "datasets-clean-work-dir": {"task": "datasets.clean_work_dir", "schedule": 3600.0},
    "training-reap-lost-jobs": {"task": "training.reap_lost_jobs", "schedule": 15.0},
    "notebooks-cull-servers": {"task": "notebooks.cull_servers", "schedule": 60.0},
    # A study whose step message was lost would sit still; this re-sends a step for each running study.
    "training-studies-sweep": {"task": "training.studies_sweep", "schedule": 60.0},
}


@worker_process_init.connect
def _limit_torch_threads(**_kwargs) -> None:
    # A prefork child hangs in torch if the parent already ran a multi-threaded torch op; each child
    # sets its own thread count and the parent never touches torch (see docs/architecture.md).
    from django.conf import settings

    try:
        import torch
    except ImportError:  # torch is optional for a control-plane-only worker
        return
    torch.set_num_threads(settings.STUDIO_TORCH_THREADS_PER_WORKER)
