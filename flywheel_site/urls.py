from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, include, path
from django_rq.urls import urlpatterns as rq_urlpatterns

from flywheel_site import views
from flywheel_site.api import api

# The rq-scheduler page needs the separate rq-scheduler package, which Flywheel does not
# use (RQ's own scheduler and rqcron run its periodic jobs): the page could only fail.
# Its job lists select rows with an inline script: allowed on these staff-only pages alone.
_rq_inline = csp_update({"script-src": [UNSAFE_INLINE], "style-src": [UNSAFE_INLINE]})
RQ_URLS = [
    URLPattern(route.pattern, _rq_inline(route.callback), route.default_args, route.name)
    for route in rq_urlpatterns
    if route.name != "scheduler_jobs"
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.prometheus_metrics, name="prometheus_metrics"),
    # Browsers and feed readers ask for /favicon.ico whatever the page links to.
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("reauth/", views.reauth, name="reauth"),
    path("api/v1/", api.urls),
    path("review/", include("review.urls")),
    path("curation/", include("curation.urls")),
    path("datasets/", include("training.datasets.urls")),
    path("training/", include("training.runs.urls")),
    path("training/", include("training.registry.urls")),
    path("webhooks/", include("training.webhooks.urls")),
    path("audit/", include("flywheel_site.audit.urls")),
    path("admin/", admin.site.urls),
    path("django-rq/", include((RQ_URLS, "django_rq"))),
]
