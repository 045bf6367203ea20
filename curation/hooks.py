"""Extension points where downstream apps plug into curation.

Apps depend one way (training -> review -> curation): curation never imports
review, yet a sampled candidate must enter the review queue in the same
transaction that sampled it. So curation announces what it did here, and the
site wires the downstream step in `flywheel_site.apps` (curate, then queue).
A hook runs inside the caller's transaction: if it raises, the chunk rolls
back and is retried as a whole, so a decision is never recorded without its
consequence."""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager

SampledHook = Callable[..., object]
_sampled: list[SampledHook] = []


def on_candidates_sampled(hook: SampledHook) -> SampledHook:
    """Register `hook(candidate_ids=[...])`, called with the ids of candidates
    newly sampled for review. Registering the same hook twice has no effect."""
    if hook not in _sampled:
        _sampled.append(hook)
    return hook


def candidates_sampled(*, candidate_ids: Sequence[int]) -> None:
    if not candidate_ids:
        return
    for hook in _sampled:
        hook(candidate_ids=list(candidate_ids))


RecurateHook = Callable[..., AbstractContextManager]
_recurating: list[RecurateHook] = []


def on_candidates_recurating(hook: RecurateHook) -> RecurateHook:
    """Register `hook(candidate_ids=[...])`, a context manager entered around the
    re-evaluation of existing candidates under another policy (a downstream count that
    reads their verdicts takes them out before and adds them back after).
    Registering the same hook twice has no effect."""
    if hook not in _recurating:
        _recurating.append(hook)
    return hook


@contextmanager
def candidates_recurating(*, candidate_ids: Sequence[int]):
    with ExitStack() as stack:
        for hook in _recurating:
            stack.enter_context(hook(candidate_ids=list(candidate_ids)))
        yield
