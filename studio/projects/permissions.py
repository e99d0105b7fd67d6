"""Who may do what: the one permission matrix of Studio.

Every API view and page declares the action it needs (`required_action`); `require()` and the API
permission class consult this module only. Actions outside a project are `PUBLIC` (anyone) and
`AUTHENTICATED` (any signed-in user); `STAFF` is for instance administrators.
"""

from django.db import models

PUBLIC = "public"
AUTHENTICATED = "authenticated"
STAFF = "staff"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MAINTAINER = "maintainer", "Maintainer"
    SCIENTIST = "scientist", "Scientist"
    ANNOTATOR = "annotator", "Annotator"
    VIEWER = "viewer", "Viewer"


# Highest first: a role may grant roles up to its own rank only.
ROLE_RANK = {Role.OWNER: 5, Role.MAINTAINER: 4, Role.SCIENTIST: 3, Role.ANNOTATOR: 2, Role.VIEWER: 1}

_ALL = frozenset(Role)
_MAINTAINERS = frozenset({Role.OWNER, Role.MAINTAINER})
_BUILDERS = frozenset({Role.OWNER, Role.MAINTAINER, Role.SCIENTIST})
_LABELERS = frozenset({Role.OWNER, Role.MAINTAINER, Role.SCIENTIST, Role.ANNOTATOR})

# action -> roles allowed. Later stages add their actions here and nowhere else.
MATRIX: dict[str, frozenset[str]] = {
    # the project itself
    "project.view": _ALL,
    "project.update": _MAINTAINERS,
    "project.archive": frozenset({Role.OWNER}),
    "member.view": _ALL,
    "member.manage": _MAINTAINERS,
    "audit.view": _MAINTAINERS,
    "audit.export": _MAINTAINERS,
    # Prepare
    "dataset.view": _ALL,
    "dataset.write": _BUILDERS,
    "labeling.view": _LABELERS,
    "labeling.annotate": _LABELERS,
    "labeling.manage": _BUILDERS,
    # Build
    "notebook.use": _BUILDERS,
    # Train
    "training.view": _ALL,
    "training.run": _BUILDERS,
    # Deploy
    "model.view": _ALL,
    "model.register": _BUILDERS,
    "model.deploy": _MAINTAINERS,
    # Operate
    "monitoring.view": _ALL,
    "monitoring.manage": _BUILDERS,
}

NON_PROJECT_ACTIONS = frozenset({PUBLIC, AUTHENTICATED, STAFF})


def is_known_action(action: str) -> bool:
    return action in MATRIX or action in NON_PROJECT_ACTIONS


def role_allows(role: str | None, action: str) -> bool:
    if action not in MATRIX:
        raise KeyError(f"Unknown action {action!r}: add it to studio.projects.permissions.MATRIX")
    return role in MATRIX[action]


def actions_for(role: str) -> list[str]:
    return sorted(action for action, roles in MATRIX.items() if role in roles)


def can_grant(granter_role: str, role: str) -> bool:
    """A member manager may hand out roles up to their own rank (a maintainer cannot make owners)."""
    return ROLE_RANK[Role(granter_role)] >= ROLE_RANK[Role(role)]
