from django.urls import path

from flywheel_site.audit import views

app_name = "audit"
urlpatterns = [
    path("erase/", views.erase, name="erase"),
    path("log/", views.log, name="log"),
    path("log.csv", views.log_export, {"fmt": "csv"}, name="log_csv"),
    path("log.jsonl", views.log_export, {"fmt": "jsonl"}, name="log_jsonl"),
]
