"""Webhook events."""


def event_emit(*, type: str, data: dict) -> None:
    """placeholder: replaced by the hooks branch"""
