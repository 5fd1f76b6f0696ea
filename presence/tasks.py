from celery import shared_task

from presence import services


@shared_task(name="presence.tasks.presence_sweep", ignore_result=True)
def presence_sweep() -> int:
    return services.presence_sweep()


@shared_task(name="presence.tasks.chat_box_boundaries", ignore_result=True)
def chat_box_boundaries() -> int:
    return services.chat_box_refresh_due()
