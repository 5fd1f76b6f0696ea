from celery import shared_task

from conversations import services


@shared_task(name="conversations.tasks.timers_fire", ignore_result=True)
def timers_fire() -> int:
    return services.timers_fire()
