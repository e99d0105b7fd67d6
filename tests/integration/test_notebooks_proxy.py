"""Real JupyterLab servers behind the real proxy (uvicorn): the owner reaches theirs, nobody else does.

One server is started per test and reused for every check in it (a start takes seconds).
"""

import asyncio
import json
import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import websockets
from django.test import Client
from websockets.exceptions import InvalidStatus

from notebooks.models import NotebookServer, ServerState
from notebooks.services import (
    notebook_server_start,
    notebook_server_stop,
    notebook_servers_cull,
    server_token,
)
from studio.accounts.models import ApiToken
from studio.core.testing import TEST_PASSWORD, MembershipFactory, UserFactory, project_with_roles, wait_for

pytestmark = [pytest.mark.integration]
KERNEL_PROTOCOL = "v1.kernel.websocket.jupyter.org"


def _run(coroutine):
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _session_cookie(user) -> str:
    client = Client()
    assert client.login(username=user.username, password=TEST_PASSWORD)
    return client.cookies["sessionid"].value


def _running(server: NotebookServer) -> NotebookServer:
    ready = wait_for(
        lambda: NotebookServer.objects.filter(pk=server.pk).exclude(state=ServerState.STARTING).first()
    )
    assert ready is not None, "the server never left the starting state"
    assert ready.state == ServerState.RUNNING, ready.message
    return ready


@pytest.fixture
def team(transactional_db):
    project, users = project_with_roles(name=f"Notebook team {uuid.uuid4().hex[:6]}")
    other_scientist = UserFactory(username=f"bob-{project.slug}")
    MembershipFactory(project=project, user=other_scientist, role="scientist")
    outsider = UserFactory(username=f"outsider-{project.slug}")
    return (
        project,
        users["scientist"],
        {
            "other scientist": other_scientist,
            "viewer": users["viewer"],
            "annotator": users["annotator"],
            "outsider": outsider,
        },
    )


@pytest.fixture
def started(team, studio_server):
    project, alice, others = team
    server = _running(notebook_server_start(user=alice, project=project, studio_url=studio_server))
    yield project, alice, others, server
    server.refresh_from_db()
    notebook_server_stop(user=alice, server=server)


def _kernel_execute(url, cookie, origin, code, subprotocols=None):
    """Run `code` in a kernel over the proxied channels websocket; return (subprotocol, stdout)."""

    async def scenario():
        async with websockets.connect(
            url,
            additional_headers={"Cookie": f"sessionid={cookie}"},
            origin=origin,
            subprotocols=subprotocols,
            open_timeout=20,
            max_size=None,
        ) as socket:
            msg_id = uuid.uuid4().hex
            if socket.subprotocol == KERNEL_PROTOCOL:
                return socket.subprotocol, ""
            await socket.send(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "msg_type": "execute_request",
                            "username": "test",
                            "session": uuid.uuid4().hex,
                            "version": "5.3",
                            "date": "",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "channel": "shell",
                        "content": {
                            "code": code,
                            "silent": False,
                            "store_history": False,
                            "user_expressions": {},
                            "allow_stdin": False,
                            "stop_on_error": True,
                        },
                    }
                )
            )
            output = []
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(), timeout=90))
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = message["header"]["msg_type"]
                if kind == "stream":
                    output.append(message["content"]["text"])
                elif kind == "error":
                    output.append("\n".join(message["content"]["traceback"]))
                elif kind == "status" and message["content"]["execution_state"] == "idle":
                    return socket.subprotocol, "".join(output)

    return _run(scenario())


def _ws_refused(url, cookie, origin) -> int:
    async def scenario():
        headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
        try:
            async with websockets.connect(url, additional_headers=headers, origin=origin, open_timeout=20):
                return 101
        except InvalidStatus as error:
            return error.response.status_code

    return _run(scenario())


def test_the_owner_reaches_the_lab_and_a_kernel_with_the_sdk_through_the_proxy(started, studio_server):
    project, alice, _others, server = started
    cookie = _session_cookie(alice)
    base = studio_server + server.base_url
    with httpx.Client(cookies={"sessionid": cookie}, timeout=30) as http:
        # when
        lab = http.get(base + "lab")
        contents = http.get(base + "api/contents/shared")
        kernel = http.post(base + "api/kernels", json={"name": "python3"}, headers={"Origin": studio_server})
        no_origin = http.post(base + "api/kernels", json={"name": "python3"})
        foreign_origin = http.post(
            base + "api/kernels", json={"name": "python3"}, headers={"Origin": "http://evil.example"}
        )
        page = http.get(f"{studio_server}/projects/{project.pk}/notebooks/")
        # bodies stream both ways: a few MB up and back down
        text = "0123456789abcdef" * 200_000
        saved = http.put(
            base + "api/contents/big.txt",
            json={"type": "file", "format": "text", "content": text},
            headers={"Origin": studio_server},
        )
        fetched = http.get(base + "files/big.txt")
    # then
    token = server_token(server)
    assert lab.status_code == 200
    assert "jupyter-config-data" in lab.text
    assert lab.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert token not in lab.text
    assert token not in page.text
    assert token not in contents.text
    assert page.status_code == 200
    assert "lab-frame" in page.text
    assert "getting-started.ipynb" in [item["name"] for item in contents.json()["content"]]
    assert kernel.status_code == 201, kernel.text
    assert saved.status_code == 201, saved.text
    assert fetched.text == text
    assert (no_origin.status_code, foreign_origin.status_code) == (403, 403)

    channels = base.replace("http://", "ws://") + f"api/kernels/{kernel.json()['id']}/channels"
    subprotocol, _ = _kernel_execute(channels, cookie, studio_server, "", subprotocols=[KERNEL_PROTOCOL])
    assert subprotocol == KERNEL_PROTOCOL
    code = (
        "import os, studio_sdk\n"
        "print('names:', [p.name for p in studio_sdk.Client().projects.list()])\n"
        "print('leaked:', [k for k in os.environ if k.startswith('JUPYTER_TOKEN') or k == 'SECRET_KEY'])\n"
    )
    _, output = _kernel_execute(channels, cookie, studio_server, code)
    assert f"names: [{project.name!r}]" in output, output
    assert "leaked: []" in output, output


def test_nobody_else_reaches_a_server_by_any_path(started, studio_server):
    project, _alice, others, server = started
    base = studio_server + server.base_url
    ws_base = base.replace("http://", "ws://")
    alice_cookie = _session_cookie(_alice)
    for name, user in others.items():
        cookie = _session_cookie(user)
        response = httpx.get(base + "api/status", cookies={"sessionid": cookie})
        assert response.status_code == 404, name
        assert _ws_refused(ws_base + "api/events/subscribe", cookie, studio_server) == 404, name
    # no cookie, a forged one, and the owner's own cookie from a foreign origin
    assert httpx.get(base + "api/status").status_code == 404
    assert (
        httpx.get(base + "api/status", cookies={"sessionid": "forged" + alice_cookie[6:]}).status_code == 404
    )
    assert _ws_refused(ws_base + "api/events/subscribe", None, studio_server) == 404
    assert _ws_refused(ws_base + "api/events/subscribe", alice_cookie, "http://evil.example") == 403
    # a guessed path: the right project with another server id, another project with the right id
    assert (
        httpx.get(
            studio_server + f"/notebooks/{project.pk}/{server.pk + 1000}/api/status",
            cookies={"sessionid": alice_cookie},
        ).status_code
        == 404
    )
    assert (
        httpx.get(
            studio_server + f"/notebooks/{project.pk + 1000}/{server.pk}/api/status",
            cookies={"sessionid": alice_cookie},
        ).status_code
        == 404
    )
    # the port itself, without the token: nothing, however it is asked
    direct = f"http://127.0.0.1:{server.port}{server.base_url}"
    assert httpx.get(direct + "api/status").status_code == 403
    assert httpx.get(direct + "api/status", params={"token": "guess"}).status_code == 403
    assert httpx.get(direct + "api/status", headers={"X-Studio-User": _alice.username}).status_code == 403
    assert httpx.get(direct + "lab").status_code in (302, 403)
    assert httpx.get(direct + "api/status", cookies={"sessionid": alice_cookie}).status_code == 403
    assert (
        httpx.get(
            direct + "api/status", headers={"Authorization": f"token {server_token(server)}"}
        ).status_code
        == 200
    )


def test_a_stopped_server_answers_404_and_its_sdk_token_is_revoked(started, studio_server):
    _project, alice, _others, server = started
    cookie = _session_cookie(alice)
    base = studio_server + server.base_url
    assert httpx.get(base + "api/status", cookies={"sessionid": cookie}).status_code == 200
    # when
    stopped = notebook_server_stop(user=alice, server=server)
    # then
    assert stopped.state == ServerState.STOPPED
    assert httpx.get(base + "api/status", cookies={"sessionid": cookie}).status_code == 404
    assert httpx.get(base + "lab", cookies={"sessionid": cookie}).status_code == 404
    assert (
        _ws_refused(base.replace("http://", "ws://") + "api/events/subscribe", cookie, studio_server) == 404
    )
    assert ApiToken.objects.get(pk=server.api_token_id).revoked_at is not None
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{server.port}{server.base_url}api/status", timeout=2)


def test_a_server_that_dies_is_shown_stopped_and_idle_servers_are_culled(started, settings):
    project, alice, others, server = started
    # a killed server: the spawner's watcher sees the exit
    os.kill(server.pid, signal.SIGKILL)
    dead = wait_for(
        lambda: NotebookServer.objects.filter(pk=server.pk, state=ServerState.STOPPED).first(), timeout_s=30
    )
    assert dead is not None
    assert dead.message == "The server ended."
    # a row that says running for a process nobody watches (the web process restarted): the beat task
    NotebookServer.objects.filter(pk=server.pk).update(state=ServerState.RUNNING, token_salt="x")
    assert notebook_servers_cull()["stopped_dead"] == 1
    assert NotebookServer.objects.get(pk=server.pk).state == ServerState.STOPPED
    # an idle server is culled
    restarted = _running(notebook_server_start(user=alice, project=project))
    settings.STUDIO_NOTEBOOK_IDLE_TIMEOUT_S = 0
    counts = notebook_servers_cull()
    assert counts["culled_idle"] == 1, counts
    culled = NotebookServer.objects.get(pk=restarted.pk)
    assert culled.state == ServerState.STOPPED
    assert culled.message.startswith("Stopped after")


def _room_first_message(url, cookie, origin) -> bytes:
    async def scenario():
        async with websockets.connect(
            url, additional_headers={"Cookie": f"sessionid={cookie}"}, origin=origin, open_timeout=20
        ) as socket:
            return await asyncio.wait_for(socket.recv(), timeout=30)

    return _run(scenario())


def test_members_who_may_run_code_co_edit_on_the_project_server(team, studio_server):
    project, alice, others = team
    bob, viewer = others["other scientist"], others["viewer"]
    server = _running(
        notebook_server_start(user=alice, project=project, is_shared=True, studio_url=studio_server)
    )
    try:
        base = studio_server + server.base_url
        cookies = {name: _session_cookie(user) for name, user in (("alice", alice), ("bob", bob))}
        # then: both reach it, each under their own name; a viewer does not
        for name, user in (("alice", alice), ("bob", bob)):
            me = httpx.get(base + "api/me", cookies={"sessionid": cookies[name]}, timeout=30)
            assert me.status_code == 200, name
            assert me.json()["identity"]["username"] == user.username
        viewer_cookie = _session_cookie(viewer)
        assert httpx.get(base + "api/me", cookies={"sessionid": viewer_cookie}).status_code == 404
        # the getting-started notebook opens as one collaboration room that both join
        session = httpx.put(
            base + "api/collaboration/session/shared/getting-started.ipynb",
            json={"format": "json", "type": "notebook"},
            cookies={"sessionid": cookies["alice"]},
            headers={"Origin": studio_server},
            timeout=30,
        )
        assert session.status_code in (200, 201), session.text
        room = session.json()
        url = base.replace("http://", "ws://") + (
            f"api/collaboration/room/json:notebook:{room['fileId']}?sessionId={room['sessionId']}"
        )
        for name in ("alice", "bob"):
            first = _room_first_message(url, cookies[name], studio_server)
            assert isinstance(first, bytes), name
            assert first[0] == 0, name  # a Yjs sync message: the room is live for both
        assert _ws_refused(url, viewer_cookie, studio_server) == 404
    finally:
        server.refresh_from_db()
        notebook_server_stop(user=bob, server=server)  # any member who may use it may stop it
