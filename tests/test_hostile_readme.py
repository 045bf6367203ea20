"""Every variable the settings read is in README.md's settings (issue 18 added several)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_read_from_the_environment_is_documented():
    # settings.py, or the modules it is split into, wherever they live.
    files = [*ROOT.glob("*/settings*.py"), *ROOT.glob("*/settings/*.py")]
    source = "\n".join(f.read_text(encoding="utf-8") for f in files)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = set(re.findall(r'env_\w+\(\s*"(\w+)"', source))
    assert "FLYWHEEL_SESSION_IDLE_MINUTES" in names  # the pattern finds them
    assert sorted(n for n in names if f"`{n}`" not in readme) == []
