"""A curation worker on another machine: a second process started with only what a remote
machine would have (the code, its own working directory, HOME and temp directory, its own
copy of the toxicity model, the shared DATABASE_URL and REDIS_URL; no env file, nothing of
the test process's environment or files) takes the queued jobs and curates them."""

import subprocess
import sys

import django_rq
import pytest
from django.db import connection

from curation.models import Candidate, CurationRun, FilterDecision, Interaction
from tests.support import ROOT
from tests.support.curation import edits
from tests.support.tiny_detoxify import build_tiny_detoxify

pytestmark = pytest.mark.django_db(transaction=True)


def _remote_env(settings, home) -> dict[str, str]:
    checkpoint, config_dir = build_tiny_detoxify(home / "model")
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "FLYWHEEL_ALLOW_DEV_SECRET": "true",
        "FLYWHEEL_ENV_FILE": "",
        "FLYWHEEL_TOXICITY_CHECKPOINT": str(checkpoint),
        "FLYWHEEL_TOXICITY_CONFIG_DIR": str(config_dir),
        "FLYWHEEL_EXPORT_DIR": str(home / "exports"),
        "FLYWHEEL_MODELS_DIR": str(home / "models"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.mark.slow
def test_a_worker_with_only_a_remote_machines_environment_curates(settings, tmp_path):
    interactions = edits(6, prefix="remote")
    assert django_rq.get_queue("curation").count >= 1
    home = tmp_path / "remote-machine"
    (home / "tmp").mkdir(parents=True)
    worker = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "rqworker",
            "curation",
            "--burst",
            "--worker-class",
            "rq.worker.SimpleWorker",
        ],
        cwd=home,
        env=_remote_env(settings, home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]
    ids = [i.pk for i in interactions]
    assert Interaction.objects.filter(pk__in=ids, curation_state="done").count() == 6
    assert Candidate.objects.filter(interaction_id__in=ids).count() == 6
    assert CurationRun.objects.get().status == "succeeded"
    # The toxicity model it scored with is its own copy (candidates that an earlier filter
    # failed, such as near duplicates of each other, are not scored).
    scored = FilterDecision.objects.filter(candidate__interaction_id__in=ids, filter="toxicity")
    assert scored.exists()
    assert all("detoxify" in scorer.lower() for scorer in scored.values_list("scorer", flat=True))
    assert django_rq.get_queue("curation").count == 0
