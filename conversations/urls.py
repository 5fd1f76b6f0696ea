from django.urls import path

from conversations import views

app_name = "conversations"

urlpatterns = [
    path("widget/v1/<str:widget_key>/conversations", views.conversation_start, name="start"),
    path("widget/v1/<str:widget_key>/conversations/current", views.conversation_current, name="current"),
    path(
        "widget/v1/<str:widget_key>/conversations/<int:conversation_id>/messages",
        views.conversation_message,
        name="messages",
    ),
    path(
        "widget/v1/<str:widget_key>/conversations/<int:conversation_id>/messages/<int:message_id>/feedback",
        views.faq_feedback,
        name="faq_feedback",
    ),
    path("widget/v1/<str:widget_key>/visitor", views.visitor_patch, name="visitor"),
    # The offline form of older widget scripts.
    path("widget/v1/<str:widget_key>/messages", views.offline_form, name="offline_form"),
]
