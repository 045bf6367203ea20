from django.urls import path

from curation import views

app_name = "curation"
urlpatterns = [
    path("runs/", views.runs, name="runs"),
    path("interactions/retry/", views.interaction_retry, name="interactions_retry"),
    path("interactions/<int:pk>/retry/", views.interaction_retry, name="interaction_retry"),
    path("candidates/", views.candidates, name="candidates"),
    path("candidates/bulk/", views.candidates_bulk, name="candidates_bulk"),
    path("candidates/<int:pk>/", views.candidate_detail, name="candidate"),
    path("candidates/<int:pk>/act/", views.candidate_act, name="candidate_act"),
    path("actions/<int:pk>/", views.action, name="action"),
    path("policy/", views.policy, name="policy"),
    path("policy/v<int:version>/", views.policy_version, name="policy_version"),
]
