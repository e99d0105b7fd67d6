"""The authenticated reverse proxy in front of the JupyterLab servers, at /notebooks/ (studio/asgi.py).

Every request and websocket under /notebooks/<project_id>/<server_id>/ is checked against the Django
session (cookie → session → user, with the session's auth hash verified), the project membership (a
role with `notebook.use`) and the server's owner (their own server, or the project's shared one); then
its Origin (websockets and unsafe methods must come from the studio's own origin, because Jupyter skips
its XSRF checks for token-authenticated requests). Only then is it forwarded, with the server's token
added as an Authorization header, which the browser never sees. Anything else, and any server that is
not running, is a 404.

HTTP is streamed both ways (httpx); websockets are relayed frame by frame (websockets library) with the
subprotocol the browser asked for and Jupyter chose (kernel channels use one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from urllib.parse import urlsplit

import httpx
from channels.db import database_sync_to_async
from django.conf import settings
from django.http import parse_cookie
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

logger = logging.getLogger(__name__)

PREFIX = "/notebooks/"
_PATH = re.compile(r"^/notebooks/(\d{1,18})/(\d{1,18})/")
_HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"trailers",
    b"transfer-encoding",
    b"upgrade",
}
# Request headers the browser may not pass on: ours to set (auth, identity) or the studio's (cookies).
_DROPPED_REQUEST = _HOP_BY_HOP | {b"host", b"authorization", b"cookie", b"x-studio-user", b"x-forwarded-for"}
_DROPPED_RESPONSE = _HOP_BY_HOP | {b"content-security-policy", b"x-frame-options", b"server"}
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# The lab is framed by the studio's notebooks page only: same origin, through this proxy.
FRAME_HEADERS = [
    (b"content-security-policy", b"frame-ancestors 'self'"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
]


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int
    token: str
    username: str

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"host", f"{self.host}:{self.port}".encode()),
            (b"authorization", f"token {self.token}".encode()),
            (b"x-studio-user", self.username.encode()),
        ]


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _authorize(*, cookie_header: str, project_id: int, server_id: int) -> Upstream | None:
    from django.contrib import auth

    from notebooks.selectors import notebook_server_for_proxy
    from notebooks.services import server_token

    session_key = parse_cookie(cookie_header).get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # get_user verifies the session's auth hash, so a session from before a password change is refused.
    user = auth.get_user(SimpleNamespace(session=session))
    server = notebook_server_for_proxy(user=user, project_id=project_id, server_id=server_id)
    if server is None or not server.token_salt:
        return None
    return Upstream(host=server.host, port=server.port, token=server_token(server), username=user.username)


def _cookies_for_upstream(cookie_header: str) -> str:
    """The browser's cookies minus the studio's own: Jupyter needs its _xsrf cookie, never our session."""
    own = {settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME}
    kept = [f"{name}={value}" for name, value in parse_cookie(cookie_header).items() if name not in own]
    return "; ".join(kept)


def _same_origin(scope, origin: str) -> bool:
    if not origin:
        return False
    parts = urlsplit(origin)
    if parts.netloc and parts.netloc == _header(scope, b"host"):
        return True
    return origin in settings.CSRF_TRUSTED_ORIGINS


class NotebookProxy:
    """ASGI middleware: /notebooks/... goes to the servers, everything else to `app`."""

    def __init__(self, app):
        self.app = app
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(connect=5.0, read=None, write=60.0, pool=10.0),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=40),
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] in ("http", "websocket") and scope["path"].startswith(PREFIX):
            return await self._proxy(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _proxy(self, scope, receive, send):
        match = _PATH.match(scope["path"])
        upstream = None
        if match:
            upstream = await database_sync_to_async(_authorize)(
                cookie_header=_header(scope, b"cookie"),
                project_id=int(match.group(1)),
                server_id=int(match.group(2)),
            )
        if scope["type"] == "websocket":
            if upstream is None:
                return await _refuse_websocket(scope, receive, send, 404)
            if not _same_origin(scope, _header(scope, b"origin")):
                return await _refuse_websocket(scope, receive, send, 403)
            return await self._websocket(scope, receive, send, upstream)
        if upstream is None:
            return await _plain(send, 404, b"Not found.")
        if scope["method"] in _UNSAFE_METHODS:
            origin = _header(scope, b"origin") or _header(scope, b"referer")
            if not _same_origin(scope, origin):
                return await _plain(send, 403, b"Cross-origin request refused.")
        return await self._http(scope, receive, send, upstream)

    async def _http(self, scope, receive, send, upstream: Upstream):
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _DROPPED_REQUEST]
        headers += upstream.headers()
        cookies = _cookies_for_upstream(_header(scope, b"cookie"))
        if cookies:
            headers.append((b"cookie", cookies.encode("latin-1")))
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            raw_path += b"?" + scope["query_string"]
        url = httpx.URL(f"http://{upstream.host}:{upstream.port}", raw_path=raw_path)
        has_body = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
        content = _request_body(receive) if has_body else b""
        request = self.client.build_request(scope["method"], url, headers=headers, content=content)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as error:
            logger.info("notebook server at port %s did not answer: %s", upstream.port, error)
            return await _plain(send, 502, b"The notebook server does not answer; start it again.")
        try:
            response_headers = [
                (k, v) for k, v in response.headers.raw if k.lower() not in _DROPPED_RESPONSE
            ] + FRAME_HEADERS
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": response_headers}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (httpx.HTTPError, OSError) as error:
            logger.info("notebook proxy stream ended early: %s", error)
        finally:
            await response.aclose()

    async def _websocket(self, scope, receive, send, upstream: Upstream):
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"ws://{upstream.host}:{upstream.port}{raw_path}" + (f"?{query}" if query else "")
        headers = [(k.decode(), v.decode()) for k, v in upstream.headers() if k != b"host"]
        cookies = _cookies_for_upstream(_header(scope, b"cookie"))
        if cookies:
            headers.append(("Cookie", cookies))
        try:
            upstream_socket = await websocket_connect(
                url,
                subprotocols=scope.get("subprotocols") or None,
                additional_headers=headers,
                max_size=None,
                open_timeout=10,
                proxy=None,
                user_agent_header=None,
            )
        except InvalidStatus as error:
            status = error.response.status_code
            status = status if 400 <= status < 600 else 502
            return await _refuse_websocket(scope, receive, send, status, connected=True)
        except (OSError, InvalidHandshake, TimeoutError):
            return await _refuse_websocket(scope, receive, send, 502, connected=True)
        await send({"type": "websocket.accept", "subprotocol": upstream_socket.subprotocol})

        async def browser_to_server():
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":
                    data = message.get("bytes")
                    await upstream_socket.send(data if data is not None else message.get("text", ""))
                elif message["type"] == "websocket.disconnect":
                    return

        async def server_to_browser():
            with contextlib.suppress(ConnectionClosed):
                async for data in upstream_socket:
                    if isinstance(data, bytes):
                        await send({"type": "websocket.send", "bytes": data})
                    else:
                        await send({"type": "websocket.send", "text": data})
            code = upstream_socket.close_code or 1000
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": code if code != 1005 else 1000})

        tasks = [asyncio.ensure_future(browser_to_server()), asyncio.ensure_future(server_to_browser())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await upstream_socket.close()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _request_body(receive):
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def _plain(send, status: int, body: bytes):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse_websocket(scope, receive, send, status: int, *, connected: bool = False):
    if not connected and (await receive())["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        body = b"Not found." if status == 404 else b"Refused."
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 4000 + status})
