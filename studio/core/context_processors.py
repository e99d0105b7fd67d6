import functools

from django.conf import settings
from django.utils.functional import SimpleLazyObject

# The left navigation by lifecycle stage. Later stages add their pages here: (label, icon, url name).
STAGES = [
    (
        "Prepare",
        "bi-database",
        [
            ("Datasets", "bi-table", "datasets:list"),
            ("Recipes", "bi-magic", "datasets:recipes"),
        ],
    ),
    ("Build", "bi-journal-code", [("Notebooks", "bi-journal-code", "notebooks:lab")]),
    (
        "Train",
        "bi-cpu",
        [
            ("New training", "bi-play-circle", "training:new"),
            ("Runs", "bi-graph-up", "training:runs"),
            ("Studies", "bi-sliders2", "training:studies"),
        ],
    ),
    ("Deploy", "bi-rocket-takeoff", []),
    ("Operate", "bi-activity", []),
]


def studio(request):
    def nav_projects():
        from studio.projects.selectors import project_list

        if not request.user.is_authenticated:
            return []
        return list(project_list(user=request.user)[:25])

    access = getattr(request, "access", None)
    return {
        "studio_signup_enabled": settings.STUDIO_SIGNUP_ENABLED,
        "nav_projects": SimpleLazyObject(nav_projects),
        "current_project": access.project if access else None,
        "current_role": access.role if access else None,
        "may": SimpleLazyObject(lambda: _Allowed(access)),
        "stages": SimpleLazyObject(lambda: _visible_stages(access)),
    }


def _visible_stages(access) -> list:
    """STAGES without the pages the caller's role may not open (a viewer sees no "New training")."""
    if access is None:
        return STAGES
    return [
        (stage, icon, [item for item in items if access.allows(_page_action(item[2]))])
        for stage, icon, items in STAGES
    ]


@functools.cache
def _page_action(url_name: str) -> str:
    # The action a page declares with @page (studio.core.pages): one source of truth for nav and view.
    from django.urls import resolve, reverse

    return resolve(reverse(url_name, kwargs={"project_id": 1})).func.required_action


class _Allowed:
    """Lets templates ask `{% if may.member_manage %}` of the current project's matrix."""

    def __init__(self, access):
        self.access = access

    def __getattr__(self, name):
        if self.access is None or name.startswith("_"):
            return False
        return self.access.allows(name.replace("_", ".", 1))
