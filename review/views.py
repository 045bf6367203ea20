from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from flywheel_site.access import ANNOTATOR, require_role
from review.models import ReviewItem


@login_required
def home(request):
    require_role(request.user, ANNOTATOR)
    queued = ReviewItem.objects.filter(status=ReviewItem.Status.QUEUED).count()
    return render(request, "review/home.html", {"queued": queued})
