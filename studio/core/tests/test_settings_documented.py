"""Every setting read from the environment is documented in .env.example (CONVENTIONS rule 6)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_every_environment_setting_is_in_env_example():
    settings_text = (ROOT / "studio" / "settings.py").read_text()
    names = set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", settings_text))
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "STUDIO_DATA_DIR"} <= names
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE)
    )
    missing = sorted(names - documented)
    assert not missing, f"add these settings to .env.example with a one-line comment: {missing}"
