"""Projects (workspaces): list, create, get, rename, archive, members and audit log."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from studio_sdk._http import Transport
from studio_sdk.exceptions import NotFoundError


@dataclass(eq=False, repr=False)
class Project:
    """A project as the caller sees it (`role` is the caller's role in it)."""

    id: int
    name: str
    slug: str
    description: str = ""
    is_archived: bool = False
    role: str | None = None
    member_count: int | None = None
    created_at: str | None = None
    _transport: Transport | None = field(default=None, compare=False)

    @classmethod
    def _from_api(cls, data: dict, transport: Transport) -> "Project":
        project = cls(id=data["id"], name=data["name"], slug=data["slug"], _transport=transport)
        project._update(data)
        return project

    def _update(self, data: dict) -> "Project":
        for name in ("name", "slug", "description", "is_archived", "role", "member_count", "created_at"):
            if name in data:
                setattr(self, name, data[name])
        return self

    @property
    def _path(self) -> str:
        return f"projects/{self.id}"

    def _call(self, method: str, path: str = "", **kwargs: Any) -> Any:
        return self._http.request(method, self._path + path, **kwargs)

    @property
    def _http(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("This Project is not bound to a Client; get it through client.projects.")
        return self._transport

    def refresh(self) -> "Project":
        """Reload the project's fields from the server."""
        return self._update(self._call("GET"))

    def rename(self, name: str) -> "Project":
        return self._update(self._call("PATCH", json={"name": name}))

    def update(self, *, name: str | None = None, description: str | None = None) -> "Project":
        changes = {
            key: value for key, value in (("name", name), ("description", description)) if value is not None
        }
        return self._update(self._call("PATCH", json=changes))

    def archive(self) -> "Project":
        """Make the project read-only (owners only)."""
        return self._update(self._call("POST", "/archive"))

    def unarchive(self) -> "Project":
        return self._update(self._call("DELETE", "/archive"))

    def members(self) -> list[dict]:
        """Return every member: dicts with user_id, username, email, role, created_at."""
        return list(self._http.paginate(self._path + "/members"))

    def add_member(self, user: str, role: str) -> dict:
        """Add a user (username or e-mail address) with a role; return the new membership."""
        return self._call("POST", "/members", json={"user": user, "role": role})

    def audit(self, *, page_size: int | None = None, **filters: Any) -> list[dict]:
        """Return the newest page of audit events (filters: action, actor, target_type, since, until)."""
        params = _audit_params(filters, page_size=page_size)
        return self._call("GET", "/audit", params=params)["results"]

    def iter_audit(self, *, page_size: int | None = None, **filters: Any) -> Iterator[dict]:
        """Yield every matching audit event, newest first, fetching pages as needed."""
        yield from self._http.paginate(
            self._path + "/audit", params=_audit_params(filters, page_size=page_size)
        )

    def __repr__(self) -> str:
        archived = ", archived" if self.is_archived else ""
        return f"<Project id={self.id} name={self.name!r} role={self.role!r}{archived}>"


def _audit_params(filters: dict[str, Any], *, page_size: int | None) -> dict[str, Any]:
    params = {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in filters.items()
        if value is not None
    }
    if page_size is not None:
        params["page_size"] = page_size
    return params


class Projects:
    """`client.projects`: the projects the token can see."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def list(self, *, archived: bool = False, page_size: int | None = None) -> list[Project]:
        """Return every visible project (archived ones too when `archived=True`), following pagination."""
        params: dict[str, Any] = {}
        if archived:
            params["archived"] = "true"
        if page_size is not None:
            params["page_size"] = page_size
        return [
            Project._from_api(item, self._http) for item in self._http.paginate("projects", params=params)
        ]

    def create(self, name: str, description: str = "") -> Project:
        data = self._http.request("POST", "projects", json={"name": name, "description": description})
        return Project._from_api(data, self._http)

    def get(self, id_or_name: int | str) -> Project:
        """Return a project by id (int) or by exact name (str; archived projects included)."""
        if isinstance(id_or_name, bool) or not isinstance(id_or_name, int | str):
            raise TypeError(f"expected a project id (int) or name (str), not {type(id_or_name).__name__}")
        if isinstance(id_or_name, int):
            return Project._from_api(self._http.request("GET", f"projects/{id_or_name}"), self._http)
        page = self._http.request("GET", "projects", params={"name": id_or_name, "archived": "true"})
        if page["count"] == 1:
            return Project._from_api(page["results"][0], self._http)
        if page["count"] == 0:
            message = f"No project named {id_or_name!r} is visible to this token."
        else:
            message = f"{page['count']} projects are named {id_or_name!r}; get one by its id instead."
        raise NotFoundError(message, status=404, code="not_found", detail={"name": id_or_name})
