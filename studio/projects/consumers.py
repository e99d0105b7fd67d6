from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from studio.projects.events import project_group

CLOSE_FORBIDDEN = 4403


class ProjectEventsConsumer(AsyncJsonWebsocketConsumer):
    """Pushes a project's live events (activity, job progress, …) to the members watching it."""

    async def connect(self):
        user = self.scope.get("user")
        project_id = self.scope["url_route"]["kwargs"]["project_id"]
        if user is None or not user.is_authenticated or not await self._may_view(user, project_id):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = project_group(project_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The feed is one-way; a ping keeps proxies from closing an idle socket.
        if content.get("type") == "ping":
            await self.send_json({"kind": "pong"})

    async def project_event(self, message):
        await self.send_json({"kind": message["kind"], "payload": message["payload"]})

    @database_sync_to_async
    def _may_view(self, user, project_id) -> bool:
        from studio.projects.access import member_role

        return member_role(user=user, project_id=project_id) is not None
