"""The review app's one error type, and the two answers it takes."""


class ReviewError(Exception):
    """A refused write; ``message`` is shown to the user as it is."""

    status = 422

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class LeaseLost(ReviewError):
    """The caller does not hold a live lease on the item (HTTP 409)."""

    status = 409


class InvalidReview(ReviewError):
    status = 422
