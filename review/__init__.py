"""Review owns the human step: the queue it pulls from curation's sampling decisions, leases,
reviews, outcomes, adjudication, guidelines and agreement. It imports curation, never training."""
