"""Helpers and fixtures shared across test areas. Test modules import from here, never from
one another; the modules that define fixtures are registered in tests/conftest.py."""

from pathlib import Path

# The repository's root: tests run its commands and read its files.
ROOT = Path(__file__).resolve().parents[2]
