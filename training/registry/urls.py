"""The registry's actions under /training/ (the run and model pages are training.runs')."""

from django.urls import path

from training.registry import views as views_canary

app_name = "registry"
urlpatterns = [
    path(
        "experiments/<int:pk>/stop/",
        views_canary.experiment_act,
        {"action": "stop"},
        name="experiment_stop",
    ),
    path(
        "experiments/<int:pk>/extend/",
        views_canary.experiment_act,
        {"action": "extend"},
        name="experiment_extend",
    ),
    path(
        "experiments/<int:pk>/decide/",
        views_canary.experiment_act,
        {"action": "decide"},
        name="experiment_decide",
    ),
    path("alerts/<int:pk>/rollback/", views_canary.alert_roll_back, name="alert_rollback"),
]
