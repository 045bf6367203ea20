"""The one error type of the training app.

Services raise `TrainingError` for a write they refuse (bad input, a row in the wrong
state); views catch it and nothing else, so a programming mistake (a stray ValueError or
KeyError) still reaches the error page and the logs instead of being shown as a message.
"""


class TrainingError(Exception):
    """A refused write; ``message`` is shown to the user as it is."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status
