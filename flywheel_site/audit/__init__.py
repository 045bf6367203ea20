"""The tamper-evident audit chain over django-pghistory's event tables (README, "Audit")."""
