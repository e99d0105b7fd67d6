"""Write a random per-install SECRET_KEY under STUDIO_DATA_DIR for `make run`, unless SECRET_KEY is set.

Run before Django loads its settings, which refuse the built-in development key when DEBUG is off.
"""

import os
import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def ensure_secret_key() -> Path | None:
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
    if os.environ.get("SECRET_KEY"):
        return None
    data_dir = Path(os.environ.get("STUDIO_DATA_DIR", BASE_DIR / "var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "secret_key"
    if not key_file.is_file() or not key_file.read_text().strip():
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(50) + "\n")
    return key_file


if __name__ == "__main__":
    ensure_secret_key()
