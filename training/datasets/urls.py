from django.urls import path

from training.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.datasets, name="datasets"),
    path("quarantines/", views.quarantines, name="quarantines"),
    path("pairs/<int:pk>/", views.gold_pair_detail, name="pair"),
    path("pairs/<int:pk>/quarantine/", views.gold_pair_quarantine, name="pair_quarantine"),
    path("pairs/<int:pk>/correct/", views.gold_pair_correct, name="pair_correct"),
    path("<slug:name>/", views.dataset_detail, name="dataset"),
    path("<slug:name>/freeze/", views.dataset_freeze, name="freeze"),
    path("<slug:name>/v<int:number>/", views.version_detail, name="version"),
    path("<slug:name>/v<int:number>/diff/", views.version_diff, name="diff"),
    path("<slug:name>/v<int:number>/quarantine/", views.version_quarantine, name="quarantine"),
    path("<slug:name>/v<int:number>/files/<path:file>", views.version_download, name="download"),
]
