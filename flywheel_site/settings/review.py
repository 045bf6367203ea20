"""Review: leases, the mix of the "all" queue, and when skipped items go to a curator."""

from flywheel_site.env import env_int, env_weights

# Minutes an annotator holds an item; renewed while they are active on it.
FLYWHEEL_REVIEW_LEASE_MINUTES = env_int("FLYWHEEL_REVIEW_LEASE_MINUTES", 10, minimum=1)
# The order the "all" queue serves kinds in: weights per kind, so one kind
# cannot flood the others (review.queues checks the names at start-up).
FLYWHEEL_REVIEW_MIX = env_weights("FLYWHEEL_REVIEW_MIX", "preference:3,sft:1,needs_answer:1")
# Distinct annotators who skip an item before it goes to a curator.
FLYWHEEL_REVIEW_SKIPS_TO_CURATOR = env_int("FLYWHEEL_REVIEW_SKIPS_TO_CURATOR", 3, minimum=1)
