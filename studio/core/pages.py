"""Page (HTML view) helpers: every page declares the action it needs, like the API views."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import render

from studio.errors import ApplicationError, NotFound
from studio.projects import permissions as matrix
from studio.projects.access import project_access


def page(action: str):
    """Declare and enforce the action a page needs.

    Project pages take `project_id` and get `request.access`.
    """
    if not matrix.is_known_action(action):
        raise KeyError(f"Unknown action {action!r}")

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if action != matrix.PUBLIC and not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if action == matrix.STAFF and not request.user.is_staff:
                raise Http404
            if action in matrix.MATRIX:
                try:
                    request.access = project_access(
                        user=request.user, project_id=kwargs["project_id"], action=action
                    )
                except NotFound:
                    raise Http404 from None
                except ApplicationError as error:
                    return render(request, "core/error.html", {"error": error}, status=error.status_code)
            return view(request, *args, **kwargs)

        wrapper.required_action = action
        return wrapper

    return decorate


def paginate(request, items, per_page: int = 50):
    """A page of `items` for list pages (they must cope with 100k rows: never render them all)."""
    from django.core.paginator import Paginator

    paginator = Paginator(items, per_page)
    return paginator.get_page(request.GET.get("page"))
