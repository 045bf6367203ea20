from django.urls import path

from training.registry import views as views_canary
from training.runs import views as views_runs

app_name = "training_runs"
urlpatterns = [
    path("runs/", views_runs.run_list, name="runs"),
    path("runs/start/", views_runs.run_start, name="start"),
    path("runs/<int:pk>/", views_runs.run_detail, name="run"),
    path("models/", views_runs.model_list, name="models"),
    path("models/<int:pk>/", views_runs.model_detail, name="model"),
    path(
        "models/<int:pk>/promote/",
        views_runs.model_decide,
        {"decision": "promote"},
        name="promote",
    ),
    path("models/<int:pk>/reject/", views_runs.model_decide, {"decision": "reject"}, name="reject"),
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
