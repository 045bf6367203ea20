"""Curation owns everything upstream of a human: ingest (tokens, events, PII stripping), candidates,
the filters with their recorded decisions, and the sampling decision. It imports no other app."""
