"""The registry's actions under /training/ (the run and model pages are training.runs')."""

from django.urls import path

from training.registry import views

app_name = "registry"
urlpatterns = [
    path(
        "experiments/<int:pk>/stop/",
        views.experiment_act,
        {"action": "stop"},
        name="experiment_stop",
    ),
    path(
        "experiments/<int:pk>/extend/",
        views.experiment_act,
        {"action": "extend"},
        name="experiment_extend",
    ),
    path(
        "experiments/<int:pk>/decide/",
        views.experiment_act,
        {"action": "decide"},
        name="experiment_decide",
    ),
    path("alerts/<int:pk>/rollback/", views.alert_roll_back, name="alert_rollback"),
]
