"""OpenTelemetry ingest: OTLP/HTTP trace exports whose GenAI spans become interactions and
whose gen_ai.evaluation.result events become feedback, through the same batch ingest as
every other path (curation.services.batch_ingest). See README "Sending data"."""
