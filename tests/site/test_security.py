"""Production-safe by default: security headers on every answer, templates that the
Content-Security-Policy does not break, no asset from another host, and a deploy check that
passes with FLYWHEEL_HTTPS=true."""

import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

ROOT = Path(settings.BASE_DIR)
TEMPLATES = sorted(
    path
    for pattern in ("templates/**/*.html", "*/templates/**/*.html")
    for path in ROOT.glob(pattern)
    if ".venv" not in path.parts
)


def _csp(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/login/", "/api/v1/openapi.json", "/api/v1/docs", "/api/v1/no-such-thing"]
)
def test_pages_and_api_answers_carry_the_security_headers(url):
    response = Client().get(url)
    csp = _csp(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_templates_were_found():
    names = {path.name for path in TEMPLATES}
    assert {"base.html", "item.html", "version.html", "run.html", "candidates.html"} <= names


class _InlineFinder(HTMLParser):
    """Whatever the policy refuses: style attributes, <style> elements, <script> bodies,
    on* event handler attributes and javascript: links."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action") and (value or "").startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")
        if tag == "style":
            self.found.append("<style>")
        if tag == "script":
            types = dict(attrs).get("type", "text/javascript")
            self._in_script = types in ("text/javascript", "module", "")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append(f"<script>{data.strip()[:40]}")


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_has_inline_style_or_script(template):
    text = template.read_text()
    # Template tags are not markup; blank them so the parser sees plain HTML.
    finder = _InlineFinder()
    finder.feed(re.sub(r"{%.*?%}|{#.*?#}", "", text, flags=re.S))
    assert finder.found == []
    assert not re.search(r"\sstyle\s*=", text)


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag in ("script", "img", "iframe") and values.get("src"):
            self.urls.append(values["src"])
        if tag == "link" and values.get("href"):
            self.urls.append(values["href"])


@pytest.mark.django_db
def test_no_page_loads_an_asset_from_another_host(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", password="correct-horse-12")
    client.force_login(user)
    urls = [
        "/review/",
        "/review/stats/",
        "/curation/runs/",
        "/curation/candidates/",
        "/curation/policy/",
        "/datasets/",
        "/training/runs/",
        "/training/models/",
        "/api/v1/docs",
        "/admin/",
        "/django-rq/",
    ]
    assets = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        parser = _Assets()
        parser.feed(response.content.decode())
        assets[url] = parser.urls
    external = {
        url: [a for a in found if re.match(r"^(https?:)?//", a)] for url, found in assets.items()
    }
    assert {url: found for url, found in external.items() if found} == {}
    # Swagger UI is served by this site.
    assert "/static/ninja/swagger-ui-bundle.js" in assets["/api/v1/docs"]


def _deploy_check(**env) -> subprocess.CompletedProcess:
    # Only what a production host would set: nothing inherited from the test run.
    environment = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "flywheel.example.com",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_deploy_check_passes_with_flywheel_https():
    result = _deploy_check(FLYWHEEL_HTTPS="true")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_without_flywheel_https_the_deploy_check_names_what_is_missing():
    result = _deploy_check(FLYWHEEL_HTTPS="false")
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr
