from django.urls import path

from review import views

app_name = "review"
urlpatterns = [
    path("", views.home, name="home"),
    path("next/", views.claim_next, name="next"),
    path("queue/", views.queue, name="queue"),
    path("items/<int:pk>/", views.item, name="item"),
    path(
        "items/by-candidate/<int:candidate_pk>/",
        views.item_by_candidate,
        name="item_by_candidate",
    ),
    path("items/<int:pk>/submit/", views.submit, name="submit"),
    path("items/<int:pk>/skip/", views.skip, name="skip"),
    path("items/<int:pk>/renew/", views.renew, name="renew"),
    path("items/<int:pk>/diff/", views.diff, name="diff"),
    path("items/<int:pk>/claim/", views.claim, name="claim"),
    path("items/<int:pk>/adjudicate/", views.adjudicate, name="adjudicate"),
    path("adjudication/", views.adjudication, name="adjudication"),
    path("adjudication/next/", views.adjudication_next, name="adjudication_next"),
    path("stats/", views.stats, name="stats"),
    path("mine/", views.mine, name="mine"),
    path("reviews/<int:pk>/", views.review_detail, name="review"),
    path("guidelines/", views.guidelines, name="guidelines"),
    path("guidelines/edit/", views.guidelines_edit, name="guidelines_edit"),
    path("calibration/", views.calibration, name="calibration"),
    path("calibration/apply/", views.calibration_apply, name="calibration_apply"),
    path("guidelines/preview/", views.guidelines_preview, name="guidelines_preview"),
]
