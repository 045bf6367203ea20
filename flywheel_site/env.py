"""Typed readers for environment variables.

Every setting comes through one of these, so a typo in a deployment fails at
start-up with the variable's name instead of misbehaving later.
"""

import os
from collections.abc import MutableMapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

# Where `scripts/services.sh start` writes the local services' URLs and a generated
# SECRET_KEY, so `manage.py` works as the README shows it in any shell.
ENV_FILE_VARIABLE = "FLYWHEEL_ENV_FILE"
DEFAULT_ENV_FILE = Path(__file__).resolve().parent.parent / ".run" / "env"
MISSING_ENV_FILE = "FLYWHEEL_ENV_FILE points at {path}, which does not exist"
# The line is not echoed: it may hold a secret.
BAD_ENV_LINE = "{path}, line {number}: expected KEY=VALUE"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    _check_range(name, value, minimum, maximum)
    return value


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    _check_range(name, value, minimum, maximum)
    return value


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices`, the tuple the module that owns the value defines."""
    value = os.environ.get(name) or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_networks(name: str, default: list[str]) -> list[IPv4Network | IPv6Network]:
    """A comma-separated list of addresses or CIDR blocks (10.0.0.0/8, ::1)."""
    try:
        return [ip_network(item, strict=False) for item in env_list(name, default)]
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None


def env_weights(name: str, default: str) -> dict[str, int]:
    """``key:weight,key:weight`` as an ordered dict of positive integer weights.
    Which keys are allowed is for the reader to check (it owns that list)."""
    raw = os.environ.get(name)
    text = default if raw is None or raw.strip() == "" else raw
    weights: dict[str, int] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition(":")
        key = key.strip()
        try:
            weight = int(value)
        except ValueError:
            weight = 0
        if not sep or not key or weight < 1:
            raise ImproperlyConfigured(
                f"{name} must be name:weight pairs with whole weights >= 1, "
                f"separated by commas, got {text!r}"
            )
        if key in weights:
            raise ImproperlyConfigured(f"{name} names {key!r} twice")
        weights[key] = weight
    return weights


def _check_range(name, value, minimum, maximum) -> None:
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be <= {maximum}, got {value}")


def database_from_url(url: str) -> dict:
    """A Django DATABASES entry from postgres://user:pass@host:port/name?opt=v."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(
            "DATABASE_URL must start with postgres:// (PostgreSQL is required), "
            f"got {parsed.scheme!r}"
        )
    name = parsed.path.lstrip("/")
    if not name:
        raise ImproperlyConfigured("DATABASE_URL has no database name")
    options = {}
    for part in filter(None, parsed.query.split("&")):
        key, _, value = part.partition("=")
        options[key] = unquote(value)
    return {
        "ENGINE": "flywheel_site.postgres",
        "NAME": unquote(name),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "OPTIONS": options,
    }


def env_file_load(environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Set the KEY=VALUE lines of the env file on `environ` for keys it does not have.

    The file is FLYWHEEL_ENV_FILE (empty: none) or .run/env, which may be missing (a
    deployment sets its variables itself). manage.py and wsgi.py call this before Django
    starts; the settings do not, so a test run keeps exactly the environment it was given.
    Returns the file read, if any.
    """
    raw = environ.get(ENV_FILE_VARIABLE)
    if raw == "":
        return None
    path = Path(raw) if raw else DEFAULT_ENV_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if raw:
            raise ImproperlyConfigured(MISSING_ENV_FILE.format(path=path)) from None
        return None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            raise ImproperlyConfigured(BAD_ENV_LINE.format(path=path, number=number))
        environ.setdefault(key, value)
    return path
