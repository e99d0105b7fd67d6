"""docker-compose.yml validates with Debian's docker-compose 1.29.2 and describes the stack we mean.

The files are copied to a temporary folder with a .env made from .env.example, as an operator would.
No Docker daemon is needed: `docker-compose config` only reads, checks and prints the file.
"""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SERVICES = {"postgres", "redis", "web", "worker", "worker-gpu", "beat"}
SECRET_KEY = "test-secret-key-for-compose-config"
POSTGRES_PASSWORD = "test-postgres-password"


def _docker_compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed (it validates docker-compose.yml): "
            "`apt-get install docker-compose`"
        )
    return binary


def _write_stack(folder: Path, *, secrets: dict[str, str]) -> None:
    """Copy the compose file and Dockerfile into `folder`, with .env.example as .env plus `secrets`."""
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(REPO / name, folder / name)
    placeholder = re.compile(r"^#?\s*(SECRET_KEY|POSTGRES_PASSWORD)=")
    lines = [line for line in (REPO / ".env.example").read_text().splitlines() if not placeholder.match(line)]
    lines += [f"{name}={value}" for name, value in secrets.items()]
    (folder / ".env").write_text("\n".join(lines) + "\n")


def _compose(folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    # A bare environment: only .env may supply SECRET_KEY and the rest, whatever the caller's shell holds.
    environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder), "LANG": "C.UTF-8"}
    return subprocess.run(
        [_docker_compose(), "-f", "docker-compose.yml", *arguments],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _host_ip(port) -> str | None:
    """Return the host address a published port binds to (None: every interface)."""
    if isinstance(port, dict):  # long syntax
        return port.get("host_ip")
    parts = str(port).split(":")
    return parts[0] if len(parts) == 3 else None


def test_compose_file_is_valid(tmp_path):
    # given
    _write_stack(tmp_path, secrets={"SECRET_KEY": SECRET_KEY, "POSTGRES_PASSWORD": POSTGRES_PASSWORD})

    # when
    result = _compose(tmp_path, "config", "-q")

    # then
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stderr}"


def test_compose_stack_has_the_production_services(tmp_path):
    # given
    _write_stack(tmp_path, secrets={"SECRET_KEY": SECRET_KEY, "POSTGRES_PASSWORD": POSTGRES_PASSWORD})

    # when
    result = _compose(tmp_path, "config")

    # then
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == SERVICES

    gpu_worker = services["worker-gpu"]
    command = gpu_worker["command"]
    arguments = shlex.split(command) if isinstance(command, str) else list(command)
    assert arguments[arguments.index("-Q") + 1] == "gpu"
    devices = gpu_worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]

    web_ports = services["web"]["ports"]
    assert web_ports, "web publishes no port"
    assert [_host_ip(port) for port in web_ports] == ["127.0.0.1"] * len(web_ports)
    published_elsewhere = {
        name for name, service in services.items() if name != "web" and service.get("ports")
    }
    assert published_elsewhere == set()

    for name in ("web", "worker", "worker-gpu", "beat"):
        environment = services[name]["environment"]
        assert environment["SECRET_KEY"] == SECRET_KEY
        assert environment["DATABASE_URL"] == f"postgres://studio:{POSTGRES_PASSWORD}@postgres:5432/studio"
        assert environment["REDIS_URL"] == "redis://redis:6379/0"


def test_compose_refuses_to_run_without_a_secret_key(tmp_path):
    # given
    _write_stack(tmp_path, secrets={"POSTGRES_PASSWORD": POSTGRES_PASSWORD})

    # when
    result = _compose(tmp_path, "config")

    # then
    assert result.returncode != 0, (
        f"docker-compose config accepted a stack without SECRET_KEY:\n{result.stdout}"
    )
    assert "SECRET_KEY" in result.stderr
