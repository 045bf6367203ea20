from django.contrib import admin
from django.urls import include, path

from curation.api import api
from flywheel_site import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
]
