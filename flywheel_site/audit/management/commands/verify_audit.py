from django.core.management.base import BaseCommand, CommandError

from flywheel_site.audit.services import audit_verify


class Command(BaseCommand):
    help = (
        "Verify the audit chain (every pghistory event, in one hash chain) and the dataset "
        "manifests' chain; name the first broken link and exit 1 if anything is broken."
    )

    def handle(self, *args, **options) -> None:
        check = audit_verify()
        self.stdout.write(
            f"{check.links} audit link(s), {check.redactions} redaction(s), "
            f"{check.versions} dataset version(s) checked."
        )
        if check.ok:
            self.stdout.write(self.style.SUCCESS("The audit and manifest chains verify."))
            return
        self.stderr.write(f"First broken link: {check.problems[0]}")
        for problem in check.problems[1:]:
            self.stderr.write(f"  {problem}")
        raise CommandError(f"{len(check.problems)} problem(s) found.")
