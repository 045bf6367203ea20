from django.urls import path

from flywheel_site.audit import views

app_name = "audit"
urlpatterns = [path("erase/", views.erase, name="erase")]
