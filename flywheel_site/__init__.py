"""The site: settings, URLs, the API object, the wiring between apps (apps.py, cron.py) and the
small helpers every app shares (access, env, http, redis, db). Apps never import its wiring."""
