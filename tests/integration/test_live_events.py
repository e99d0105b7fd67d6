"""The project websocket over a real uvicorn process: members get live events, others are refused."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets
from django.db import connection
from django.test import Client

from studio.core.testing import TEST_PASSWORD, UserFactory, project_with_roles
from studio.projects.services import membership_add

pytestmark = [pytest.mark.integration]


def _run(coroutine):
    # Playwright's sync API may hold an event loop in this thread (browser tests share the session).
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _session_cookie(username: str) -> str:
    client = Client()
    assert client.login(username=username, password=TEST_PASSWORD)
    return client.cookies["sessionid"].value


def _ws_url(studio_server: str, project_id: int) -> str:
    return studio_server.replace("http://", "ws://") + f"/ws/projects/{project_id}/"


async def _connect(url, cookie, origin):
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
    return await websockets.connect(url, additional_headers=headers, origin=origin, open_timeout=10)


def test_member_receives_live_activity(transactional_db, studio_server):
    project, users = project_with_roles()
    UserFactory(username="late-joiner")
    cookie = _session_cookie(users["viewer"].username)

    def add_member():
        try:
            membership_add(user=users["owner"], project=project, invitee="late-joiner", role="annotator")
        finally:
            connection.close()  # this thread's own connection, or the test database cannot be dropped

    async def scenario():
        socket = await _connect(_ws_url(studio_server, project.pk), cookie, studio_server)
        try:
            await asyncio.to_thread(add_member)
            message = json.loads(await asyncio.wait_for(socket.recv(), timeout=15))
        finally:
            await socket.close()
        return message

    message = _run(scenario())
    assert message["kind"] == "activity"
    assert message["payload"]["action"] == "member.add"
    assert message["payload"]["data"] == {"user": "late-joiner", "role": "annotator"}


@pytest.mark.parametrize("case", ["anonymous", "outsider", "foreign-origin"])
def test_websocket_refuses_non_members_and_foreign_origins(transactional_db, studio_server, case):
    project, users = project_with_roles()
    UserFactory(username="outsider")
    cookie = {
        "anonymous": None,
        "outsider": _session_cookie("outsider"),
        "foreign-origin": _session_cookie(users["owner"].username),
    }[case]
    origin = "http://evil.example" if case == "foreign-origin" else studio_server

    async def scenario():
        try:
            socket = await _connect(_ws_url(studio_server, project.pk), cookie, origin)
        except websockets.exceptions.InvalidStatus as refused:
            return ("refused", refused.response.status_code)
        try:
            await asyncio.wait_for(socket.recv(), timeout=10)
        except websockets.exceptions.ConnectionClosed as closed:
            return ("closed", closed.rcvd.code if closed.rcvd else None)
        return ("open", None)

    outcome = _run(scenario())
    assert outcome in {("refused", 403), ("closed", 4403)}, outcome
