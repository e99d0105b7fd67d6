import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from studio.core.management.commands.studio_bootstrap import bootstrap


class Command(BaseCommand):
    help = "Prepare the database and start the whole studio (web, worker, beat, embedded Redis) with honcho."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("STUDIO_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("STUDIO_PORT", "8000")))

    def handle(self, *args, host, port, **options):
        settings.STUDIO_DATA_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        login = bootstrap(admin_password=os.environ.get("STUDIO_ADMIN_PASSWORD") or None)

        processes = ["web", "worker", "beat"]
        if not os.environ.get("REDIS_URL"):
            processes.insert(0, "redis")
        venv_bin = os.path.dirname(sys.executable)
        env = dict(
            os.environ,
            STUDIO_HOST=host,
            STUDIO_PORT=str(port),
            PYTHONUNBUFFERED="1",
            PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""),
        )
        procfile = settings.BASE_DIR / "Procfile"
        honcho = [
            sys.executable,
            "-m",
            "honcho",
            "-f",
            str(procfile),
            "-d",
            str(settings.BASE_DIR),
            "start",
            *processes,
        ]
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (only displayed)
        url = f"http://{shown_host}:{port}/"
        threading.Thread(target=self._announce_when_ready, args=(url, login), daemon=True).start()
        child = subprocess.Popen(honcho, env=env)
        try:
            sys.exit(child.wait())
        except KeyboardInterrupt:
            # Ctrl-C reached honcho too (same process group); it stops every process it started.
            child.send_signal(signal.SIGINT)
            sys.exit(child.wait())

    def _announce_when_ready(self, url: str, login: dict) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "health", timeout=3) as response:  # noqa: S310 (our own URL)
                    if response.status == 200:
                        break
            except Exception:  # not up yet (503 while the worker starts, or refused)
                time.sleep(1)
        if login["created"] and login["password"] and not login.get("password_from_env"):
            password = f"{login['password']}   (shown once: change it in the user menu)"
        elif login["created"]:
            password = "(from STUDIO_ADMIN_PASSWORD)"  # noqa: S105 (a label, not a secret)
        else:
            password = (
                "(set at first start; `python manage.py changepassword " + login["username"] + "` resets it)"
            )
        banner = [
            "",
            "=" * 72,
            f"  Studio is running at {url}",
            f"  Sign in as: {login['username']}",
            f"  Password:   {password}",
            "  Stop everything with Ctrl-C.",
            "=" * 72,
            "",
        ]
        print("\n".join(banner), flush=True)
