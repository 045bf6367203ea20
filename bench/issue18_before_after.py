"""Issue 18's table, row by row, against any checkout of Flywheel: what each hostile input
gets there. Run it in the tree before the fix and in this one to see each row change:

    git worktree add /tmp/old18 1ac74a5^1        # main just before the hostile branch
    ln -s $PWD/.venv /tmp/old18/.venv
    (cd /tmp/old18 && .venv/bin/python $OLDPWD/bench/issue18_before_after.py)
    .venv/bin/python bench/issue18_before_after.py

It makes a scratch database (flywheel_issue18, dropped at the end) on the server of
DATABASE_URL, migrates it with that tree's migrations, and prints one JSON object: one entry
per row, each probe's answer. Only URLs, settings and the renderer are used, so the same
probes run against both trees. Rows 3 (reviewer names) and 5 (the canary reasons) need data
the probes do not build: their tests in the note show those.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

TREE = Path.cwd()
# In place of this script's folder, whose bench/markdown.py would shadow Python-Markdown.
sys.path[0] = str(TREE)
SCRATCH = "flywheel_issue18"
NUL = "a reason with a NUL\x00 byte"


def _database(*, create: bool) -> None:
    import psycopg

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:25432/flywheel")
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        if create:
            connection.execute(f"CREATE DATABASE {SCRATCH}")
    if not create:
        return
    os.environ["FLYWHEEL_ISSUE18_BASE_URL"] = base
    os.environ["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + SCRATCH
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")
    os.environ.setdefault("FLYWHEEL_ALLOW_DEV_SECRET", "true")


def _render() -> dict:
    from flywheel_site.text_render import render_markdown

    start = time.process_time()
    render_markdown("Please summarise this: " + "[" * 2_000)
    row1 = {'CPU s to render "[" * 2,000': round(time.process_time() - start, 3)}
    try:
        render_markdown("* " * 600 + "deep")
        row2 = 'renders "* " * 600 + "deep"'
    except RecursionError:
        row2 = 'RecursionError on "* " * 600 + "deep"'
    style = render_markdown("Before <style> the rest of the answer")
    image = render_markdown("See ![r](/review/stats/?x=1)")
    row6 = {
        "text after an unclosed <style> shown": "the rest of the answer" in style,
        "relative image fetched (an <img>)": "<img" in image,
    }
    return {"1 quadratic Markdown": row1, "2 RecursionError": row2, "6 hidden text, images": row6}


def _ssrf() -> dict:
    from django.conf import settings

    try:
        from training.webhooks.delivery import Refused, url_check
    except ImportError:
        from training.webhook_http import Refused, url_check
    settings.FLYWHEEL_WEBHOOK_ALLOW_PRIVATE = False
    settings.FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS = []
    answers = {}
    for url in ("http://[2002:7f00:1::]/", "http://[fec0::1]/", "http://localhost:9/"):
        try:
            url_check(url)
            answers[url] = "accepted"
        except Refused as refused:
            answers[url] = f"refused: {refused}"
    return {"7 SSRF": answers}


def _people():
    from django.contrib.auth.models import Group, User
    from django.test import Client

    def client(username: str, role: str | None, **flags) -> Client:
        user = User.objects.create_user(username=username, password="x" * 20, **flags)
        if role:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        signed_in = Client(raise_request_exception=False)
        signed_in.force_login(user)
        return signed_in

    return client("ada", "admin"), client("stella", None, is_staff=True)


def _pages(admin, staff) -> dict:
    row4 = {
        f"staff-only GET {path}": staff.get(path).status_code for path in ("/django-rq/", "/admin/")
    }
    gets = [
        "/?end=0001-01-01",
        "/curation/candidates/?created_from=0001-01-01&created_to=9999-12-31",
        "/curation/candidates/?q=" + "-" * 50,
    ]
    posts = [
        ("/review/calibration/apply/", {"filter": "length", "threshold": "1e12", "reason": "r"}),
        (
            "/review/calibration/apply/",
            {"filter": "length", "threshold": "2147483648", "reason": "r"},
        ),
        ("/review/calibration/apply/", {"filter": "length", "threshold": "3", "reason": NUL}),
        ("/review/queue/", {"kind": "all", "task_type": NUL}),
        ("/review/guidelines/edit/", {"body": NUL, "note": "n"}),
    ]
    row5 = {f"GET {path}": admin.get(path).status_code for path in gets}
    for path, fields in posts:
        shown = {k: ("<NUL>" if "\x00" in v else v) for k, v in fields.items()}
        row5[f"POST {path} {shown}"] = admin.post(path, fields).status_code
    return {"4 staff-only user": row4, "5 cheap 500s": row5}


def _tokens() -> dict:
    from django.test import Client

    from curation.services import api_token_create

    api_token_create(source_name="shop", name="own", scopes=["metrics"])
    _, other = api_token_create(source_name="elsewhere", name="other", scopes=["metrics"])
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {other}"}
    client = Client(raise_request_exception=False)
    mine = client.get("/api/v1/metrics?days=3", **bearer)
    theirs = client.get("/api/v1/metrics?days=3&source=shop", **bearer)
    long_url = client.get("/api/v1/metrics?days=3&source=" + "s" * 2_100, **bearer)
    row3 = {
        "token of 'elsewhere', no source: the window's source": mine.json()["window"]["source"],
        "token of 'elsewhere', ?source=shop": theirs.status_code,
    }
    row9 = {"/api/ URL of 2,150 bytes": f"{long_url.status_code} {long_url['Content-Type']}"}
    return {"3 token of one source": row3, "9 JSON 414": row9}


def _settings() -> dict:
    from django.conf import settings

    return {
        "8 sessions and lockout": {
            "SESSION_COOKIE_AGE (s)": settings.SESSION_COOKIE_AGE,
            "idle timeout (min)": getattr(settings, "FLYWHEEL_SESSION_IDLE_MINUTES", None),
            "AXES_LOCKOUT_PARAMETERS": getattr(settings, "AXES_LOCKOUT_PARAMETERS", None),
            "client address read by": getattr(settings, "AXES_CLIENT_IP_CALLABLE", None),
            "re-authentication (min)": getattr(settings, "FLYWHEEL_REAUTH_MINUTES", None),
            "trusted proxies": getattr(settings, "FLYWHEEL_TRUSTED_PROXIES", None),
        }
    }


def main() -> None:
    _database(create=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.test.utils import setup_test_environment

    setup_test_environment()
    try:
        call_command("migrate", verbosity=0)
        result = {"tree": str(TREE), **_render(), **_ssrf()}
        result.update(_pages(*_people()))
        result.update(_tokens())
        result.update(_settings())
    finally:
        connections.close_all()
        os.environ["DATABASE_URL"] = os.environ["FLYWHEEL_ISSUE18_BASE_URL"]
        _database(create=False)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
