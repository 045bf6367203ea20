"""Every `manage.py` command in README.md's code blocks runs as written in a fresh shell.

Each command runs in a subprocess whose environment holds only PATH, HOME and
FLYWHEEL_ENV_FILE, pointing at an env file like the one `scripts/services.sh start`
writes, but aimed at the test database and Redis database 1. So a command passes only if
manage.py finds the database, Redis and SECRET_KEY through the env file, as it must for a
user typing it after `make run`.
"""

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from curation.models import ApiToken, Feedback, Interaction
from tests.support import ROOT

README = ROOT / "README.md"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*$")
# The commands that must be found, so a broken extraction cannot pass by finding none.
KNOWN = {"create_api_token", "import_logs"}
MISSING_INPUTS = (
    "README command {command!r} has placeholders {names}: give them inputs in INPUTS "
    "(and a check in CHECKS) in tests/system/test_readme_commands.py"
)


def readme_commands() -> list[list[str]]:
    """argv lists, from the interpreter on, of every manage.py line in a code block."""
    commands = []
    for block in FENCE.findall(README.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            # Only manage.py lines are parsed: other commands (curl) may quote across lines.
            if "manage.py" not in line:
                continue
            words = shlex.split(line, comments=True)
            if "manage.py" in words:
                start = max(words.index("manage.py") - 1, 0)
                commands.append(words[start:])
    return commands


COMMANDS = readme_commands()


def _name(argv: list[str]) -> str:
    return argv[argv.index("manage.py") + 1]


def _logs_dir(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    interaction = {
        "id": "readme-1",
        "timestamp": "2026-10-01T09:00:00Z",
        "workload_id": "support",
        "request": {
            "model": "acme-chat-2025-09",
            "messages": [{"role": "user", "content": "How do I reset my password?"}],
        },
        "response": {"choices": [{"message": {"content": "Use the link on the login page."}}]},
    }
    feedback = {"id": "readme-f1", "interaction_id": "readme-1", "feedback_type": "thumbs_up"}
    (logs / "interactions_2026-10-01.jsonl").write_text(json.dumps(interaction) + "\n")
    (logs / "feedback_2026-10-01.jsonl").write_text(json.dumps(feedback) + "\n")
    return logs


# Inputs for each command's placeholders (the README's DIR, NAME, ...).
INPUTS = {
    "import_logs": lambda tmp_path: {"DIR": str(_logs_dir(tmp_path)), "NAME": "readme-import"},
}


def _check_create_api_token(result):
    token = ApiToken.objects.get(source__name="my-app", name="prod")
    assert sorted(token.scopes) == ["export", "ingest"]
    assert result.stdout.strip().startswith(token.hint)


def _check_import_logs(result):
    assert "created 2, duplicate 0, rejected 0" in result.stdout
    assert Interaction.objects.get(event_id="readme-1").source.name == "readme-import"
    assert Feedback.objects.get(event_id="readme-f1").interaction.event_id == "readme-1"


# What each command must have done, besides exiting 0.
CHECKS = {"create_api_token": _check_create_api_token, "import_logs": _check_import_logs}


def _fill(argv: list[str], inputs: dict[str, str]) -> list[str]:
    """The README's `[--opt VALUE]` is run with the option given; placeholders filled."""
    words = [w.removeprefix("[").removesuffix("]") for w in argv]
    missing = sorted({w for w in words if PLACEHOLDER.match(w) and w not in inputs})
    assert not missing, MISSING_INPUTS.format(command=_name(argv), names=missing)
    return [inputs.get(w, w) for w in words]


@pytest.fixture
def env_file(tmp_path):
    db = connection.settings_dict
    path = tmp_path / "env"
    # The test's own Redis (database 1 under `make test`), so `make run`'s data is left alone.
    path.write_text(
        f"DATABASE_URL=postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}\n"
        f"REDIS_URL={settings.REDIS_URL}\n"
        "SECRET_KEY=readme-commands-test-secret-not-the-dev-one-0123456789abcdef\n"
    )
    return path


def test_the_readme_shows_the_commands_this_file_knows():
    assert {_name(argv) for argv in COMMANDS} >= KNOWN


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("argv", COMMANDS, ids=[_name(argv) for argv in COMMANDS])
def test_a_readme_command_runs_as_written_in_a_clean_shell(argv, env_file, tmp_path):
    name = _name(argv)
    inputs = INPUTS.get(name, lambda _: {})(tmp_path)
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path))}
    result = subprocess.run(
        _fill(argv, inputs),
        cwd=ROOT,
        env={**clean, "FLYWHEEL_ENV_FILE": str(env_file)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert name in CHECKS, f"add a check of what {name!r} did to CHECKS"
    CHECKS[name](result)
