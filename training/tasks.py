from celery import shared_task
from django.conf import settings


# No Celery time limit: the supervisor enforces the job's own limit and stops its process group.
@shared_task(name="training.run_job", acks_late=True, reject_on_worker_lost=True)
def training_job_task(*, job_id: int) -> None:
    from training.jobs import training_job_execute

    training_job_execute(job_id=job_id)


@shared_task(name="training.reap_lost_jobs", time_limit=120)
def training_jobs_reap_task() -> int:
    from training.jobs import training_jobs_reap

    return training_jobs_reap(heartbeat_timeout_s=settings.STUDIO_JOB_HEARTBEAT_TIMEOUT_S)


# acks_late: a step lost with its worker is delivered again; steps are idempotent (see study_step).
@shared_task(name="training.study_step", acks_late=True, reject_on_worker_lost=True, time_limit=300)
def study_step_task(*, study_id: int) -> None:
    from training.studies import study_step

    study_step(study_id=study_id)


@shared_task(name="training.studies_sweep", time_limit=120)
def studies_sweep_task() -> int:
    from training.studies import studies_sweep

    return studies_sweep()
