from celery import shared_task


@shared_task(name="datasets.run_job", acks_late=True, reject_on_worker_lost=True, time_limit=6 * 3600)
def dataset_job_task(*, job_id: int) -> None:
    from datasets.services import dataset_job_execute

    dataset_job_execute(job_id=job_id)


@shared_task(name="datasets.profile", acks_late=True, reject_on_worker_lost=True, time_limit=3600)
def dataset_profile_task(*, version_id: int) -> None:
    from datasets.services import dataset_version_profile_execute

    dataset_version_profile_execute(version_id=version_id)


@shared_task(name="datasets.clean_work_dir", time_limit=600)
def dataset_work_dir_clean_task() -> int:
    from django.conf import settings

    from datasets.services import work_dir_clean

    return work_dir_clean(older_than_s=settings.STUDIO_LONGEST_JOB_S + 3600)
