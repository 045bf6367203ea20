"""RQ entry points for webhooks: thin, take ids, call services."""

from django.db import close_old_connections

from training.webhooks import services as webhooks


def webhook_deliver(delivery_id: int) -> dict:
    """One attempt at one delivery; a duplicate or late job finds it claimed or done."""
    close_old_connections()
    return {"delivery": delivery_id, "result": webhooks.delivery_attempt(delivery_id=delivery_id)}


def webhooks_sweep() -> dict:
    """Periodic: take back deliveries of dead workers and queue the due ones."""
    close_old_connections()
    return webhooks.deliveries_sweep()
