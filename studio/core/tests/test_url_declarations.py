"""Every route declares the action it needs; a route that declares none fails this test."""

from django.urls import URLPattern, URLResolver, get_resolver

from studio.core.permissions import declared_action
from studio.projects import permissions as matrix

# Django's admin enforces staff status itself; it is the only route family outside the matrix.
EXEMPT_NAMESPACES = {"admin"}


def _walk(patterns, prefix="", namespace=None):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), entry.namespace or namespace)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), namespace, entry.callback


def _declared(callback) -> list[str]:
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    holder = view_class or callback
    action = getattr(holder, "required_action", None)
    if isinstance(action, dict):
        return list(action.values())
    return [action] if action else []


def test_every_route_declares_a_known_action():
    undeclared, unknown = [], []
    for route, namespace, callback in _walk(get_resolver().url_patterns):
        if namespace in EXEMPT_NAMESPACES:
            continue
        actions = _declared(callback)
        if not actions:
            undeclared.append(route)
        unknown += [f"{route}: {action}" for action in actions if not matrix.is_known_action(action)]
    assert not undeclared, f"routes that declare no required_action: {undeclared}"
    assert not unknown, f"routes that declare actions missing from the matrix: {unknown}"


def test_the_walk_sees_the_routes():
    routes = {route for route, _namespace, _callback in _walk(get_resolver().url_patterns)}
    assert "api/v1/projects" in routes
    assert "projects/<int:project_id>/settings/members/" in routes


def test_an_api_view_without_a_declaration_is_denied():
    class Undeclared:
        pass

    assert declared_action(Undeclared(), "GET") is None
    assert not matrix.is_known_action("nonsense.action")
