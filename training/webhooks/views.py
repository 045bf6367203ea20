"""Webhook pages (admin role): endpoints, the delivery log, test and send-again buttons.
Thin: the form checks shapes and bounds, training.webhooks.services decides, and refused input
answers 400 with the page and its errors, having changed nothing. A form posts to the URL of
the page that shows it, so a refused form is re-rendered at a URL that also answers GET: Back
or reload after a refusal lands on the page, not on a 405."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from flywheel_site.access import ADMIN, role_required
from flywheel_site.http import int_param, render_page, require_post
from training.errors import TrainingError
from training.webhooks import selectors as selectors_webhooks
from training.webhooks import services as webhooks
from training.webhooks.forms import WebhookEndpointForm

CREATED = "Registered {endpoint}. Its signing secret is on its page."
UPDATED = "Saved {endpoint}."
ENABLED = {True: "{endpoint} is enabled.", False: "{endpoint} is disabled."}
TEST_QUEUED = "Queued a webhook.test event for {endpoint}; its delivery is in the log."
RESENT = "Delivery #{pk} will be sent again."
BAD_ENABLED = "Say enabled=on or enabled=off."


def _form(data=None, *, initial=None, with_secret=True) -> WebhookEndpointForm:
    return WebhookEndpointForm(
        data, initial=initial, event_types=webhooks.EVENT_TYPES, with_secret=with_secret
    )


def _list_page(request, form, *, status=200):
    context = {"endpoints": selectors_webhooks.endpoints_list(), "form": form}
    return render(request, "training/webhooks/endpoints.html", context, status=status)


def _endpoint_page(request, endpoint, form=None, *, status=200):
    if form is None:
        initial = {
            "url": endpoint.url,
            "description": endpoint.description,
            "event_types": endpoint.event_types,
        }
        form = _form(initial=initial, with_secret=False)
    context = {
        "endpoint": endpoint,
        "form": form,
        "deliveries": selectors_webhooks.deliveries_page(endpoint=endpoint, size=10).rows,
    }
    return render(request, "training/webhooks/endpoint.html", context, status=status)


@role_required(ADMIN)
@require_http_methods(["GET", "HEAD", "POST"])
def endpoints(request):
    if request.method == "POST":
        return _endpoint_create(request)
    return _list_page(request, _form())


def _endpoint_create(request):
    form = _form(request.POST)
    if not form.is_valid():
        return _list_page(request, form, status=400)
    try:
        endpoint = webhooks.webhook_endpoint_create(user=request.user, **form.cleaned_data)
    except TrainingError as error:
        form.add_error(None, error.message)
        return _list_page(request, form, status=400)
    messages.success(request, CREATED.format(endpoint=endpoint))
    return redirect("webhooks:endpoint", pk=endpoint.pk)


@role_required(ADMIN)
@require_http_methods(["GET", "HEAD", "POST"])
def endpoint_detail(request, pk: int):
    endpoint = get_object_or_404(selectors_webhooks.endpoints(), pk=pk)
    if request.method == "POST":
        return _endpoint_edit(request, endpoint)
    return _endpoint_page(request, endpoint)


def _endpoint_edit(request, endpoint):
    form = _form(request.POST, with_secret=False)
    if not form.is_valid():
        return _endpoint_page(request, endpoint, form, status=400)
    try:
        webhooks.webhook_endpoint_update(endpoint=endpoint, **form.cleaned_data)
    except TrainingError as error:
        form.add_error(None, error.message)
        endpoint.refresh_from_db()
        return _endpoint_page(request, endpoint, form, status=400)
    messages.success(request, UPDATED.format(endpoint=endpoint))
    return redirect("webhooks:endpoint", pk=endpoint.pk)


@role_required(ADMIN)
@require_post("webhooks:endpoint", "pk")
def endpoint_enable(request, pk: int):
    endpoint = get_object_or_404(selectors_webhooks.endpoints(), pk=pk)
    enabled = {"on": True, "off": False}.get(request.POST.get("enabled", ""))
    if enabled is None:
        messages.error(request, BAD_ENABLED)
        return _endpoint_page(request, endpoint, status=400)
    webhooks.webhook_endpoint_enable(endpoint=endpoint, enabled=enabled)
    messages.success(request, ENABLED[enabled].format(endpoint=endpoint))
    return redirect("webhooks:endpoint", pk=endpoint.pk)


@role_required(ADMIN)
@require_POST
def endpoint_test(request, pk: int):
    endpoint = get_object_or_404(selectors_webhooks.endpoints(), pk=pk)
    try:
        webhooks.webhook_test_send(endpoint=endpoint, user=request.user)
    except TrainingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, TEST_QUEUED.format(endpoint=endpoint))
    return redirect("webhooks:endpoint", pk=endpoint.pk)


@role_required(ADMIN)
def deliveries(request):
    """The delivery log, overall or of one endpoint (?endpoint=<pk>), newest first."""
    endpoint = selectors_webhooks.endpoint_get(pk=int_param(request.GET.get("endpoint")))
    before = int_param(request.GET.get("before"))
    page = selectors_webhooks.deliveries_page(endpoint=endpoint, before=before)
    context = {
        "deliveries": page.rows,
        "endpoint": endpoint,
        "next_before": page.older,
    }
    return render_page(request, "training/webhooks/deliveries.html", "log", context)


@role_required(ADMIN)
def delivery_detail(request, pk: int):
    delivery = get_object_or_404(selectors_webhooks.deliveries(), pk=pk)
    context = {
        "delivery": delivery,
        "attempts": selectors_webhooks.delivery_attempts(delivery=delivery),
        "payload": webhooks.payload_bytes(delivery.event).decode(),
    }
    return render(request, "training/webhooks/delivery.html", context)


@role_required(ADMIN)
@require_POST
def delivery_resend(request, pk: int):
    delivery = get_object_or_404(selectors_webhooks.deliveries(), pk=pk)
    try:
        webhooks.delivery_resend(delivery=delivery)
    except TrainingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, RESENT.format(pk=pk))
    return redirect("webhooks:delivery", pk=pk)
