"""Fixtures shared by every test: real processes (uvicorn, a Celery worker) and a real browser."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make beside it
# are safe (tests only), so let Django allow them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(settings_dict: dict) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    return f"postgres://{auth}{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def process_env(django_db_setup, django_db_blocker):
    """Environment for child processes so that they use the test database, Redis and data dir."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    with django_db_blocker.unblock():
        call_command("collectstatic", interactive=False, verbosity=0)
    return dict(
        os.environ,
        DATABASE_URL=_database_url(connection.settings_dict),
        REDIS_URL=settings.REDIS_URL,
        STUDIO_DATA_DIR=str(settings.STUDIO_DATA_DIR),
        STUDIO_STATIC_ROOT=str(settings.STATIC_ROOT),
        SECRET_KEY=settings.SECRET_KEY,
        PYTHONUNBUFFERED="1",
        # The port studio_server will listen on, chosen now so that workers (script jobs) and notebook
        # kernels started by any fixture reach the same web process.
        STUDIO_API_URL=f"http://127.0.0.1:{_free_port()}",
    )


def _wait_until(check, *, timeout_s: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} was not ready after {timeout_s} s:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def studio_server(process_env, tmp_path_factory):
    """A real Studio web process (uvicorn, ASGI: HTTP + websockets) on a free loopback port."""
    port = int(process_env["STUDIO_API_URL"].rsplit(":", 1)[1])
    log = tmp_path_factory.mktemp("logs") / "web.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "studio.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=process_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            urllib.request.urlopen(url + "/accounts/login/", timeout=2)  # noqa: S310 (loopback)
            return True
        except OSError:
            return False

    _wait_until(answers, timeout_s=60, what="uvicorn", process=process, log=log)
    yield url
    _stop(process)


@pytest.fixture(scope="session")
def celery_worker_name(process_env, tmp_path_factory):
    """A real Celery worker process (prefork, queue `default`) against the real Redis and test database."""
    from studio.celery import app

    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "studio",
                "worker",
                "-Q",
                "default",
                "-c",
                "1",
                "-n",
                name,
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=process_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def answers() -> bool:
        return bool(app.control.ping(destination=[name], timeout=0.5))

    _wait_until(answers, timeout_s=90, what="celery worker", process=process, log=log)
    yield name
    _stop(process)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (make test does this)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ContextOpener:
    """Opens browser contexts (separate cookie jars = separate people) and collects console errors.

    A journey must end with none; a test that navigates to a forbidden page on purpose lists the
    statuses it expects in `expected_statuses`.
    """

    def __init__(self, browser):
        self.browser = browser
        self.contexts = []
        self.problems = []
        self.expected_statuses: set[int] = set()

    def __call__(self):
        context = self.browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(15_000)
        context.on("page", self._watch)
        self.contexts.append(context)
        return context

    def _watch(self, page):
        page.on("console", lambda message: message.type == "error" and self._console_error(message.text))
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))

    def _console_error(self, text: str):
        if any(f"status of {status} " in text for status in self.expected_statuses):
            return
        self.problems.append(f"console: {text}")


@pytest.fixture
def open_context(browser):
    opener = ContextOpener(browser)
    yield opener
    for context in opener.contexts:
        context.close()
    assert not opener.problems, "the browser reported errors:\n" + "\n".join(opener.problems)
