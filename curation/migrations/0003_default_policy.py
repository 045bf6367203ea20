from django.db import migrations


def create_default_policy(apps, schema_editor):
    CurationPolicy = apps.get_model("curation", "CurationPolicy")
    if not CurationPolicy.objects.exists():
        CurationPolicy.objects.create(version=1, note="Defaults from the design.")


class Migration(migrations.Migration):
    dependencies = [("curation", "0002_candidate_curationpolicy_candidateevent_and_more")]

    operations = [migrations.RunPython(create_default_policy, migrations.RunPython.noop)]
