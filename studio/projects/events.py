"""Live events: one websocket group per project. Services publish after commit; pages subscribe."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def project_group(project_id: int) -> str:
    return f"project.{project_id}"


def publish(*, project_id: int, kind: str, payload: dict) -> None:
    """Send an event to everyone watching the project. A lost live event must never fail the write."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            project_group(project_id), {"type": "project.event", "kind": kind, "payload": payload}
        )
    except Exception:
        logger.warning("Could not publish %s event for project %s", kind, project_id, exc_info=True)
