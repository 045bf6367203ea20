from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from curation import pipeline, runs
from curation.models import Candidate, CurationPolicy, CurationRun


class Command(BaseCommand):
    help = (
        "Re-run the filters on existing candidates under policy version N. Decisions made "
        "under other versions are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--policy", type=int, required=True, help="policy version")
        parser.add_argument(
            "--full", action="store_true", help="run every filter, not just up to the first failure"
        )

    def handle(self, *args, policy, full, **options):
        try:
            chosen = CurationPolicy.objects.get(version=policy)
        except CurationPolicy.DoesNotExist:
            raise CommandError(f"no policy version {policy}") from None
        total = Candidate.objects.count()
        run = CurationRun.objects.create(
            trigger=CurationRun.Trigger.RECURATE,
            status=CurationRun.Status.RUNNING,
            total=total,
            policy=chosen,
            started_at=timezone.now(),
        )
        with (
            runs.run_tracked(run),
            tqdm(total=total, unit="candidate", file=self.stderr._out) as bar,
        ):
            pipeline.candidates_recurate(policy=chosen, full=full, run=run, progress=bar.update)
        run.refresh_from_db()
        self.stdout.write(
            f"re-curated {run.candidates} candidates under v{chosen.version}: {run.passed} passed, "
            f"{run.failed} failed, {run.held} held, {run.sampled} newly sampled"
        )
