from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("widget.urls")),
    path("", include("conversations.urls")),
    path("", include("dashboard.urls")),
    path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
]
