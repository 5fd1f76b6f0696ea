from django.urls import include, path

from dashboard.views import faq as faq_views
from dashboard.views import groups as group_views
from dashboard.views import hours as hours_views
from dashboard.views import inbox as inbox_views
from dashboard.views import pages as views
from dashboard.views import password as password_views

dashboard_patterns = [
    path("", views.overview, name="overview"),
    path("team.json", views.team_json, name="team"),
    path("status/", views.status_set, name="status"),
    path("operators/", views.operator_list, name="operators"),
    path("operators/new/", views.operator_create, name="operator_create"),
    path("operators/<int:operator_id>/", views.operator_edit, name="operator_edit"),
    path("operators/<int:operator_id>/offline/", views.operator_force_offline, name="operator_force_offline"),
    path("groups/", group_views.group_list, name="groups"),
    path("groups/new/", group_views.group_create, name="group_create"),
    path("groups/<int:group_id>/", group_views.group_edit, name="group_edit"),
    path("groups/<int:group_id>/delete/", group_views.group_delete, name="group_delete"),
    path("hours/", hours_views.hours_edit, name="hours"),
    path("hours/<slug:group_key>/", hours_views.hours_edit, name="group_hours"),
    path("history/", views.history, name="history"),
    path("embed/", views.widget_settings, name="widget"),
    path("automatic-messages/", views.automatic_messages, name="automatic_messages"),
    path("inbox/", inbox_views.inbox, name="inbox"),
    path("inbox/count.json", inbox_views.inbox_count, name="inbox_count"),
    path("inbox/list.json", inbox_views.inbox_list, name="inbox_list"),
    path("inbox/<int:conversation_id>/", inbox_views.inbox, name="inbox_conversation"),
    path("inbox/<int:conversation_id>.json", inbox_views.conversation_json, name="inbox_conversation_json"),
    path("inbox/<int:conversation_id>/messages", inbox_views.conversation_reply, name="inbox_reply"),
    path("inbox/<int:conversation_id>/assign", inbox_views.conversation_assign, name="inbox_assign"),
    path("inbox/<int:conversation_id>/close", inbox_views.conversation_close, name="inbox_close"),
    path("profile/", views.profile, name="profile"),
    path("faq/", faq_views.faq_list, name="faq"),
    path("faq/mode/", faq_views.faq_mode, name="faq_mode"),
    path("faq/new/", faq_views.faq_create, name="faq_create"),
    path("faq/report/", faq_views.faq_report, name="faq_report"),
    path("faq/<int:entry_id>/", faq_views.faq_edit, name="faq_edit"),
    path("faq/<int:entry_id>/delete/", faq_views.faq_delete, name="faq_delete"),
]

# Log-in and log-out keep global names (settings.LOGIN_URL is "login"); the pages
# live in the "dashboard" namespace. A module-level app_name would namespace all.
urlpatterns = [
    path("login/", views.DashboardLoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    # Django's names, which its password reset views and e-mail use.
    path("password-reset/", password_views.PasswordResetRequestView.as_view(), name="password_reset"),
    path("password-reset/sent/", password_views.PasswordResetSentView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        password_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password-reset/done/", password_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("", include((dashboard_patterns, "dashboard"))),
]
