from django.urls import path

from training.runs import views as views_runs

app_name = "runs"
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
]
