from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from curation.api import api
from flywheel_site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", api.urls),
    path("review/", include("review.urls")),
    path("curation/", include("curation.urls")),
    path("datasets/", include("training.urls")),
    path("training/", include("training.urls_runs")),
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
]
