"""Every API route and method appears in one of the permission-matrix tables."""

from django.urls import URLPattern, URLResolver, get_resolver

from datasets.tests import test_permission_matrix as datasets_matrix
from notebooks.tests import test_permission_matrix as notebooks_matrix
from studio.projects.tests import test_permission_matrix as core_matrix
from training.tests import test_permission_matrix as training_matrix

TABLES = [
    core_matrix.ROUTES,
    core_matrix.GLOBAL_ROUTES,
    datasets_matrix.ROUTES,
    training_matrix.ROUTES,
    notebooks_matrix.ROUTES,
]


def _api_routes():
    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern), entry.callback

    for route, callback in walk(get_resolver().url_patterns):
        if route.startswith("api/v1/"):
            view_class = callback.view_class
            for method in ("get", "post", "put", "patch", "delete"):
                if hasattr(view_class, method):
                    yield method.upper(), route.removeprefix("api/v1/")


def test_the_tables_cover_every_api_route_and_method():
    covered = {(method, route) for table in TABLES for method, route, *_rest in table}
    missing = sorted(set(_api_routes()) - covered)
    assert not missing, f"add these API routes to a permission matrix table: {missing}"
    stale = sorted(covered - set(_api_routes()))
    assert not stale, f"these table rows name routes that no longer exist: {stale}"
