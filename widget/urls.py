from django.urls import path

from widget import views

app_name = "widget"

urlpatterns = [
    path("widget.js", views.widget_script, name="script"),
    path("widget/v1/<str:widget_key>/status", views.widget_status, name="status"),
    path("widget/demo/<str:widget_key>/", views.widget_demo, name="demo"),
]
