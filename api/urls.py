"""``/api/``: the REST API (``v1/``), its OpenAPI schema and its documentation page."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api.views import conversations as conversations_api
from api.views import faq as faq_api
from api.views import groups as groups_api
from api.views import hours as hours_api
from api.views import operators as api

app_name = "api"


urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("v1/auth/token", api.AuthTokenView.as_view(), name="auth-token"),
    path("v1/auth/logout", api.AuthLogoutView.as_view(), name="auth-logout"),
    path("v1/me", api.MeView.as_view(), name="me"),
    path("v1/me/status", api.MeStatusView.as_view(), name="me-status"),
    path("v1/me/heartbeat", api.MeHeartbeatView.as_view(), name="me-heartbeat"),
    path("v1/chat-box", api.ChatBoxView.as_view(), name="chat-box"),
    path("v1/account", api.AccountView.as_view(), name="account"),
    path("v1/operators", api.OperatorListView.as_view(), name="operators"),
    path("v1/operators/<str:operator_id>", api.OperatorDetailView.as_view(), name="operator"),
    path("v1/operators/<str:operator_id>/status", api.OperatorStatusView.as_view(), name="operator-status"),
    path("v1/groups", groups_api.GroupListView.as_view(), name="groups"),
    path("v1/groups/<str:key>", groups_api.GroupDetailView.as_view(), name="group"),
    path("v1/groups/<str:key>/opening-hours", hours_api.GroupOpeningHoursView.as_view(), name="group-opening-hours"),
    path("v1/opening-hours", hours_api.OpeningHoursView.as_view(), name="opening-hours"),
    path("v1/status-events", api.StatusEventListView.as_view(), name="status-events"),
    path("v1/conversations", conversations_api.ConversationListView.as_view(), name="conversations"),
    path(
        "v1/conversations/<str:conversation_id>",
        conversations_api.ConversationDetailView.as_view(),
        name="conversation",
    ),
    path(
        "v1/conversations/<str:conversation_id>/messages",
        conversations_api.ConversationMessagesView.as_view(),
        name="conversation-messages",
    ),
    path(
        "v1/conversations/<str:conversation_id>/assign",
        conversations_api.ConversationAssignView.as_view(),
        name="conversation-assign",
    ),
    path("v1/faq", faq_api.FaqListView.as_view(), name="faq"),
    path("v1/faq/match", faq_api.FaqMatchView.as_view(), name="faq-match"),
    path("v1/faq/<str:entry_id>", faq_api.FaqDetailView.as_view(), name="faq-entry"),
    path(
        "v1/conversations/<str:conversation_id>/close",
        conversations_api.ConversationCloseView.as_view(),
        name="conversation-close",
    ),
]
