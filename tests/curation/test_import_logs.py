import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from curation.models import Feedback, Interaction

pytestmark = pytest.mark.django_db
LOGS = Path(__file__).parent / "fixtures" / "logs"


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("import_logs", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_imports_logs_with_validation_and_pii_stripping():
    out, err = run(str(LOGS))
    assert "created 5, duplicate 0, rejected 3" in out
    first = Interaction.objects.get(event_id="log-1")
    assert first.source.name == "import"
    assert first.model == "acme-chat-2025-09"
    assert first.task_type == "support"
    assert first.usage["total_tokens"] == 42
    assert "jane.doe@example.com" not in first.messages[1]["content"]
    assert "[EMAIL]" in first.messages[1]["content"]
    assert first.pii == {"email": 1}
    edit = Feedback.objects.get(event_id="lf-2")
    assert edit.kind == "edited"
    assert edit.interaction.event_id == "log-2"
    assert Feedback.objects.get(event_id="lf-3").rating == 5
    # Errors name the file, line and field, never the record.
    assert "interactions_2026-10-01.jsonl:4: messages" in err
    assert "interactions_2026-10-01.jsonl:5: not a JSON object" in err
    assert "feedback_2026-10-01.jsonl:4:" in err
    assert "orphan" not in err


def test_importing_twice_creates_nothing_new():
    run(str(LOGS))
    counts = (Interaction.objects.count(), Feedback.objects.count())
    out, _ = run(str(LOGS))
    assert "created 0, duplicate 5, rejected 3" in out
    assert (Interaction.objects.count(), Feedback.objects.count()) == counts


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="is not a directory"):
        run(str(tmp_path / "nope"))
    with pytest.raises(CommandError, match="no interactions_"):
        run(str(tmp_path))
