"""Issue 6, Speed: a notebook server's start to ready, p50 over 5 starts, and its memory when idle.

Each start goes through the service the API calls (`notebooks.services.notebook_server_start`: the
database row, the project token, the shared folder, the `LocalProcessSpawner`), and ends when the
server's `/api/status` answers through its token (polled every 50 ms by the benchmark). After the last
start the server idles for a few seconds and its resident memory (RSS, the process and any children)
is read; then a kernel is started through the server's API, left idle, and the total read again.
For reference, the same number of starts of a bare `python -m jupyterlab` (default config, token by
environment), each right after a Studio start; the issue measured about 3 s for a bare server.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import httpx
import psutil

from bench._studio import setup_django
from bench.common import markdown_table

TITLE = "Notebook server start to ready (p50 of 5) and RSS of an idle server, without and with a kernel"
# Studio's start adds the database row, a token, the shared folder and its own Jupyter config to a bare
# server's start: allow half again a bare server's time on the same machine.
GOAL_RATIO_TO_BARE = 1.5
STARTS = 5
QUICK_STARTS = 1
IDLE_SETTLE_S = 5.0
POLL_S = 0.05
READY_TIMEOUT_S = 120


def _tree_rss_bytes(pid: int) -> int:
    process = psutil.Process(pid)
    processes = [process, *process.children(recursive=True)]
    total = 0
    for item in processes:
        try:
            total += item.memory_info().rss
        except psutil.Error:
            continue
    return total


def _bare_start_s() -> float:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="bench-bare-lab-") as folder:
        env = dict(
            os.environ,
            JUPYTER_TOKEN=token,
            JUPYTER_CONFIG_DIR=f"{folder}/config",
            JUPYTER_DATA_DIR=f"{folder}/data",
            JUPYTER_RUNTIME_DIR=f"{folder}/runtime",
        )
        command = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}", "--no-browser"]
        if os.geteuid() == 0:
            command.append("--allow-root")
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    response = httpx.get(
                        f"http://127.0.0.1:{port}/api/status",
                        headers={"Authorization": f"token {token}"},
                        timeout=1,
                    )
                    if response.status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                time.sleep(POLL_S)
            raise RuntimeError("the bare JupyterLab server did not answer")
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_ready(server, status) -> float:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        server.refresh_from_db()
        if server.state == "failed":
            raise RuntimeError(f"the server failed to start: {server.message}")
        if server.port and status(server) is not None:
            return time.perf_counter()
        time.sleep(POLL_S)
    raise RuntimeError(f"the server was not ready after {READY_TIMEOUT_S} s")


def run(*, quick: bool = False) -> dict[str, Any]:
    setup_django()
    from notebooks.services import _status, notebook_server_start, notebook_server_stop, server_token
    from studio.core.testing import MembershipFactory, ProjectFactory, UserFactory

    suffix = uuid.uuid4().hex[:6]
    project = ProjectFactory(name=f"bench notebooks {suffix}", slug=f"bench-notebooks-{suffix}")
    user = UserFactory(username=f"bench-notebooks-{suffix}")
    MembershipFactory(project=project, user=user, role="scientist")

    starts_s: list[float] = []
    bare_s: list[float] = []
    server = None
    for index in range(QUICK_STARTS if quick else STARTS):
        started = time.perf_counter()
        server = notebook_server_start(user=user, project=project, studio_url="http://127.0.0.1:1")
        starts_s.append(_wait_ready(server, _status) - started)
        if index < (QUICK_STARTS if quick else STARTS) - 1:
            notebook_server_stop(user=user, server=server)
        # Interleaved, so that both see the same load on a shared machine.
        bare_s.append(_bare_start_s())
    try:
        time.sleep(IDLE_SETTLE_S)
        idle_rss = _tree_rss_bytes(server.pid)
        headers = {"Authorization": f"token {server_token(server)}"}
        kernel = httpx.post(server.upstream_url + "api/kernels", json={"name": "python3"}, headers=headers)
        kernel.raise_for_status()
        time.sleep(IDLE_SETTLE_S)
        with_kernel_rss = _tree_rss_bytes(server.pid)
    finally:
        notebook_server_stop(user=user, server=server)
    p50 = statistics.median(starts_s)
    bare_p50 = statistics.median(bare_s)
    return {
        "goal": f"report start-to-ready p50 over {STARTS} starts; met when it is at most "
        f"{GOAL_RATIO_TO_BARE:g}x a bare JupyterLab's on the same machine (the issue measured ~3 s bare)",
        "goal_met": p50 <= GOAL_RATIO_TO_BARE * bare_p50,
        "bare_start_to_ready_s": [round(value, 3) for value in bare_s],
        "bare_start_to_ready_p50_s": round(bare_p50, 3),
        "starts": len(starts_s),
        "start_to_ready_s": [round(value, 3) for value in starts_s],
        "start_to_ready_p50_s": round(p50, 3),
        "idle_server_rss_mib": round(idle_rss / 2**20, 1),
        "idle_server_with_one_kernel_rss_mib": round(with_kernel_rss / 2**20, 1),
    }


def markdown(result: dict[str, Any]) -> str:
    rows = [
        ["start to ready, p50", f"{result['start_to_ready_p50_s']} s"],
        ["start to ready, each start", ", ".join(f"{value} s" for value in result["start_to_ready_s"])],
        ["bare JupyterLab start to ready, p50", f"{result['bare_start_to_ready_p50_s']} s"],
        ["idle server RSS", f"{result['idle_server_rss_mib']} MiB"],
        ["idle server + one idle kernel RSS", f"{result['idle_server_with_one_kernel_rss_mib']} MiB"],
    ]
    return (
        "Each start goes through `notebook_server_start` (row, project token, shared folder, local\n"
        "spawner) and ends when `/api/status` answers with the server's token.\n\n"
        + markdown_table(["measure", "value"], rows)
        + f"\n\nGoal: {result['goal']} — {'met' if result['goal_met'] else 'missed'}.\n"
    )
