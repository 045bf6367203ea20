import io

import pytest
from django.core.management import CommandError, call_command

from curation import policies
from curation.models import Candidate, CurationRun, FilterDecision, Interaction
from tests.support.curation import edited, no_toxicity

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_curate_curates_everything_pending_in_the_foreground():
    no_toxicity()
    edited("c1"), edited("c2", final="tiny")
    out = run("curate")
    assert "curated 2 interactions: 2 candidates, 1 passed, 1 failed" in out
    assert not Interaction.objects.filter(curation_state="pending").exists()
    assert CurationRun.objects.get().trigger == "command"


def test_recurate_reruns_existing_candidates_under_the_chosen_version():
    v2 = no_toxicity()
    edited("c1")
    run("curate")
    v3 = policies.policy_create(changes={"min_words": 400})
    out = run("recurate", "--policy", str(v3.version))
    assert f"re-curated 1 candidates under v{v3.version}: 0 passed, 1 failed" in out
    assert Candidate.objects.get().failed_filter == "length"
    assert FilterDecision.objects.filter(policy=v2).exists()
    with pytest.raises(CommandError, match="no policy version 99"):
        run("recurate", "--policy", "99")
