"""The demo's accounts (an admin, an annotator and a curator, with published passwords
the environment overrides) and the curation policy the demo's data was designed against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Published demo defaults for a local demo; the environment overrides them.
DEFAULT_ADMIN_PASSWORD = "flywheel-admin-demo"  # noqa: S105
DEFAULT_ANNOTATOR_PASSWORD = "flywheel-annotator-demo"  # noqa: S105
DEFAULT_CURATOR_PASSWORD = "flywheel-curator-demo"  # noqa: S105
ADMIN_PASSWORD_ENV = "FLYWHEEL_DEMO_ADMIN_PASSWORD"  # noqa: S105 (a variable name)
ANNOTATOR_PASSWORD_ENV = "FLYWHEEL_DEMO_ANNOTATOR_PASSWORD"  # noqa: S105 (a variable name)
CURATOR_PASSWORD_ENV = "FLYWHEEL_DEMO_CURATOR_PASSWORD"  # noqa: S105 (a variable name)
PASSWORD_ENVS = (ADMIN_PASSWORD_ENV, ANNOTATOR_PASSWORD_ENV, CURATOR_PASSWORD_ENV)
ADMIN_USERNAME = "admin"
ANNOTATOR_USERNAME = "annotator"
CURATOR_USERNAME = "curator"
WEAK_PASSWORD = "The demo password for {username!r} is not accepted: {problems}"  # noqa: S105

# The curation policy the demo's data and scripted reviews were designed against. A
# database built by migrations starts at policy v1 with min_per_stratum 20 (the default
# when v1 was written); one emptied by a test's flush gets today's default (5) instead, and
# the demo then sampled other candidates. The demo pins what it needs, so it samples the
# same candidates either way.
DEMO_POLICY = {"min_per_stratum": 20}
DEMO_POLICY_NOTE = "The demo's policy (load_demo)."


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    created: bool
    # None when the account existed with another password: it is not ours to show.
    password: str | None


def demo_passwords(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        "admin_password": environ.get(ADMIN_PASSWORD_ENV) or DEFAULT_ADMIN_PASSWORD,
        "annotator_password": environ.get(ANNOTATOR_PASSWORD_ENV) or DEFAULT_ANNOTATOR_PASSWORD,
        "curator_password": environ.get(CURATOR_PASSWORD_ENV) or DEFAULT_CURATOR_PASSWORD,
    }


def demo_users_create(
    *, admin_password: str, annotator_password: str, curator_password: str
) -> list[DemoUser]:
    """Create the demo admin (superuser), annotator and curator if missing. Existing
    accounts are left as they are: someone may have changed their password or rights on
    purpose."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError
    from django.db import transaction

    user_model = get_user_model()
    # The last field is the role group (flywheel_site.access) the account joins.
    specs = (
        (
            ADMIN_USERNAME,
            admin_password,
            "superuser",
            {"is_staff": True, "is_superuser": True},
            "admin",
        ),
        (ANNOTATOR_USERNAME, annotator_password, "annotator", {}, "annotator"),
        (CURATOR_USERNAME, curator_password, "curator", {}, "curator"),
    )
    out = []
    with transaction.atomic():
        for username, password, role, flags, group in specs:
            user = user_model.objects.filter(username=username).first()
            if user is not None:
                # Passwords of existing accounts are left alone; the role is ensured
                # (accounts made before roles existed had none).
                user.groups.add(Group.objects.get_or_create(name=group)[0])
                shown = password if user.check_password(password) else None
                out.append(DemoUser(username, role, created=False, password=shown))
                continue
            candidate = user_model(username=username, **flags)
            try:
                validate_password(password, candidate)
            except ValidationError as error:
                raise ValueError(
                    WEAK_PASSWORD.format(username=username, problems=" ".join(error.messages))
                ) from None
            candidate.set_password(password)
            candidate.save()
            candidate.groups.add(Group.objects.get_or_create(name=group)[0])
            out.append(DemoUser(username, role, created=True, password=password))
    return out


def demo_policy_apply(*, changes: Mapping | None = None, note: str = DEMO_POLICY_NOTE):
    """The current policy if it is the demo's already (with `changes`), else a new version
    that is (the generator above stays free of the database; only this function touches
    it)."""
    from curation import policies

    wanted = {**DEMO_POLICY, **(changes or {})}
    current = policies.policy_current()
    if all(getattr(current, name) == value for name, value in wanted.items()):
        return current
    return policies.policy_create(changes=wanted, note=note)


def demo_policy_first_stamp(*, when) -> bool:
    """Stamp the migration's policy v1 at `when`, the start of the simulated weeks, so the
    policy page lists the demo's versions in date order (v1 is made by `migrate`, minutes
    before the demo's weeks are simulated in the past). Only on a database where nothing has
    been curated yet: then no decision names v1 and its date is only a label. The one
    update the demo makes past a read-only trigger; True if it did."""
    import pgtrigger

    from curation.models import Candidate, CurationPolicy, CurationRun

    first = CurationPolicy.objects.order_by("version").first()
    untouched = (
        first is not None
        and first.created_at > when
        and not CurationPolicy.objects.filter(version__gt=first.version).exists()
        and not Candidate.objects.exists()
        and not CurationRun.objects.exists()
    )
    if not untouched:
        return False
    with pgtrigger.ignore("curation.CurationPolicy:policy_read_only"):
        CurationPolicy.objects.filter(pk=first.pk).update(created_at=when)
    return True
