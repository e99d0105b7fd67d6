from rest_framework.permissions import BasePermission

from studio.projects import permissions as matrix


def declared_action(view, method: str) -> str | None:
    action = getattr(view, "required_action", None)
    if isinstance(action, dict):
        return action.get(method)
    return action


class DeclaredActionPermission(BasePermission):
    """Deny unless the view declares the action it needs; check what can be checked without a project.

    Project actions are checked against the caller's role by ProjectScopedApi once the project is known.
    """

    message = "You may not do this."

    def has_permission(self, request, view) -> bool:
        action = declared_action(view, request.method)
        if request.method == "OPTIONS" and action is None:
            action = matrix.AUTHENTICATED
        if action is None or not matrix.is_known_action(action):
            return False
        if action == matrix.PUBLIC:
            return True
        if not (request.user and request.user.is_authenticated):
            return False
        if action == matrix.STAFF:
            return bool(request.user.is_staff)
        return True
