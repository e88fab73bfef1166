"""URL configuration of the BLA Study project: the admin and the study app."""
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("studyapp.urls")),
    path("", RedirectView.as_view(pattern_name="studyapp:dashboard_index", permanent=False)),
]
