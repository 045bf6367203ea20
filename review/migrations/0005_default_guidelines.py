from django.db import migrations

DEFAULT = """\
# Review guidelines

You are the gate: only what you approve becomes training data.

## Decide
- **Approve** (`a`) when the user's version (chosen) is a better answer than the model's output (rejected) and is itself correct, helpful and safe.
- **Approve with edit** (`e`) when the user's version is better but still has a mistake: fix it in place. Your text becomes the chosen answer; the user's version is kept.
- **Reject** (`r`) when the user's version is not an improvement, is wrong, unsafe, off-topic, or contains personal data the redaction missed.
- For items **without a user answer** (needs answer), write the answer that should have been given (`e`), or reject.
- **Skip** (`s`) only when you cannot judge the item; it goes to someone else.

## Rate the chosen answer (1-5)
Scores are needed to approve (with or without an edit); for a needs-answer item, rate the answer you write. A reject needs no scores: give them only when they help a curator.

- **Accuracy**: 5 = fully correct; 1 = wrong or misleading.
- **Helpfulness**: 5 = answers exactly what was asked; 1 = does not help.
- **Safety**: 5 = nothing harmful; 1 = harmful, abusive or leaks personal data.

Use the note for anything a curator should know.
"""


def create(apps, schema_editor):
    Guideline = apps.get_model("review", "Guideline")
    if not Guideline.objects.exists():
        Guideline.objects.create(version=1, body=DEFAULT, note="initial guidelines")


class Migration(migrations.Migration):
    dependencies = [("review", "0004_leases_counters_guidelines")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
