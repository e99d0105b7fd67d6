"""The state of each part of Studio: web, database, Redis and the Celery workers that answer a ping."""

import time

import redis
from django.conf import settings
from django.db import connection

from studio.celery import app as celery_app


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        result = check() or {}
        result.setdefault("ok", True)
    except Exception as error:
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"engine": connection.vendor}


def _redis() -> dict:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
        return {"version": client.info("server").get("redis_version")}
    finally:
        client.close()


def _workers() -> dict:
    replies = celery_app.control.ping(timeout=settings.STUDIO_HEALTH_PING_TIMEOUT_S) or []
    names = sorted(name for reply in replies for name in reply)
    return {"ok": bool(names), "count": len(names), "names": names}


def health_report() -> dict:
    report = {
        "web": {"ok": True},
        "database": _timed(_database),
        "redis": _timed(_redis),
    }
    report["workers"] = (
        _timed(_workers)
        if report["redis"]["ok"]
        else {"ok": False, "count": 0, "names": [], "error": "Redis is down"}
    )
    report["workers"].setdefault("count", 0)
    report["status"] = (
        "ok" if all(part["ok"] for part in report.values() if isinstance(part, dict)) else "degraded"
    )
    return report
