"""The one error type of the curation app.

Services raise `CurationError` for a write they refuse (an invalid policy
value, an unknown token scope, a batch over the limit); views and commands
catch it and nothing else, so a programming mistake (a stray ValueError or
KeyError) reaches the error page and the logs instead of being shown as a
message. Pure modules (filters, dedup, pii) keep raising ValueError on bad
arguments: they know nothing of Django, and the services translate."""


class CurationError(Exception):
    """A refused write; ``message`` is shown to the user as it is."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status
