from celery import shared_task


@shared_task(name="notebooks.cull_servers", time_limit=300)
def notebook_servers_cull_task() -> dict:
    from notebooks.services import notebook_servers_cull

    return notebook_servers_cull()
