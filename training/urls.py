from django.urls import path

from training import views

app_name = "training"
urlpatterns = [
    path("", views.datasets, name="datasets"),
    path("quarantines/", views.quarantines, name="quarantines"),
    path("<slug:name>/", views.dataset_detail, name="dataset"),
    path("<slug:name>/freeze/", views.dataset_freeze, name="freeze"),
    path("<slug:name>/v<int:number>/", views.version_detail, name="version"),
    path("<slug:name>/v<int:number>/diff/", views.version_diff, name="diff"),
    path("<slug:name>/v<int:number>/quarantine/", views.version_quarantine, name="quarantine"),
    path("<slug:name>/v<int:number>/files/<path:file>", views.version_download, name="download"),
]
