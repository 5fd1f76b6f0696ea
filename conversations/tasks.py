from celery import shared_task

from conversations import services


@shared_task(name="conversations.tasks.timers_fire", ignore_result=True)
def timers_fire() -> int:
    return services.timers_fire()


@shared_task(name="conversations.tasks.faq_answer", ignore_result=True)
def faq_answer(*, conversation_id: int, from_seq: int, upto_seq: int) -> None:
    # Imported here: the FAQ services queue this task.
    from conversations.faq import services as faq_services

    faq_services.faq_bot_answer_safely(conversation_id=conversation_id, from_seq=from_seq, upto_seq=upto_seq)
