"""Wrangling recipes: ordered no-code steps, previewed live and applied by a worker into a new version.

steps = [{"type": "drop", "columns": ["id"]}, {"type": "filter", "expression": "amount > 150"}]
client.recipes.preview(version, steps)                   # the first rows after the steps, as a DataFrame
recipe = client.recipes.create("clean", version, steps)
clean = client.recipes.apply(version, recipe=recipe)     # a new DatasetVersion whose parent is `version`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from studio_sdk._http import Transport
from studio_sdk.datasets import (
    DatasetJob,
    DatasetVersion,
    ProjectScope,
    _Context,
    _frame,
    _version_id,
)
from studio_sdk.exceptions import NotFoundError

if TYPE_CHECKING:
    import pandas


@dataclass(eq=False, repr=False)
class Recipe:
    """A saved recipe: named steps, checked against the version it was built on; re-apply it to newer ones."""

    id: int
    name: str
    description: str = ""
    dataset_id: int | None = None
    steps: list[dict] = field(default_factory=list)
    created_at: str | None = None
    updated_at: str | None = None
    _context: _Context | None = field(default=None, compare=False)

    _FIELDS = ("name", "description", "dataset_id", "steps", "created_at", "updated_at")

    @classmethod
    def _from_api(cls, data: dict, context: _Context) -> Recipe:
        return cls(id=data["id"], name=data["name"], _context=context)._update(data)

    def _update(self, data: dict) -> Recipe:
        for name in self._FIELDS:
            if name in data:
                setattr(self, name, data[name])
        return self

    @property
    def _path(self) -> str:
        return f"recipes/{self.id}"

    def refresh(self) -> Recipe:
        return self._update(self._context.call("GET", self._path))

    def update(
        self,
        *,
        steps: Sequence[dict] | None = None,
        name: str | None = None,
        description: str | None = None,
        version: DatasetVersion | int | None = None,
    ) -> Recipe:
        """Save changes; the steps are checked against `version` (default: its dataset's newest version)."""
        if version is None:
            if self.dataset_id is None:
                raise ValueError(
                    "version: this recipe's dataset is gone; say which version to check against."
                )
            version_id = self._context.call("GET", f"datasets/{self.dataset_id}")["latest_version_id"]
        else:
            version_id = _version_id(version)
        body = {
            "name": self.name if name is None else name,
            "description": self.description if description is None else description,
            "steps": list(self.steps if steps is None else steps),
            "version_id": version_id,
        }
        return self._update(self._context.call("PUT", self._path, json=body))

    def delete(self) -> None:
        self._context.call("DELETE", self._path)

    def apply(
        self,
        version: DatasetVersion | int,
        *,
        dataset_name: str | None = None,
        wait: bool = True,
        progress: bool = True,
        timeout_s: float | None = None,
    ) -> DatasetVersion | DatasetJob:
        """Apply this recipe to `version` (e.g. a newer version of its source); see `Recipes.apply`."""
        return _apply(
            self._context,
            version,
            recipe_id=self.id,
            steps=None,
            dataset_name=dataset_name,
            wait=wait,
            progress=progress,
            timeout_s=timeout_s,
        )

    def __repr__(self) -> str:
        return f"<Recipe id={self.id} name={self.name!r} steps={len(self.steps)}>"


def _apply(
    context: _Context,
    version: DatasetVersion | int,
    *,
    recipe_id: int | None,
    steps: Sequence[dict] | None,
    dataset_name: str | None,
    wait: bool,
    progress: bool,
    timeout_s: float | None,
) -> DatasetVersion | DatasetJob:
    body: dict[str, Any] = {"version_id": _version_id(version)}
    if recipe_id is not None:
        body["recipe_id"] = recipe_id
    if steps is not None:
        body["steps"] = list(steps)
    if dataset_name:
        body["dataset_name"] = dataset_name
    job = DatasetJob._from_api(context.call("POST", "recipes/apply", json=body), context)
    return job.wait(timeout_s=timeout_s, progress=progress) if wait else job


class Recipes:
    """`client.recipes`: the wrangling recipes of the client's project."""

    def __init__(self, transport: Transport, scope: ProjectScope) -> None:
        self._http = transport
        self._scope = scope

    def in_project(self, project: Any) -> Recipes:
        """The same resource for another project (an id, a name or a Project)."""
        return Recipes(self._http, ProjectScope(self._http, project))

    def create(
        self, name: str, version: DatasetVersion | int, steps: Sequence[dict], description: str = ""
    ) -> Recipe:
        """Save a recipe; the server checks each step against `version`'s columns (ValidationError if not)."""
        context = self._scope.context()
        body = {
            "name": name,
            "version_id": _version_id(version),
            "steps": list(steps),
            "description": description,
        }
        return Recipe._from_api(context.call("POST", "recipes", json=body), context)

    def list(self) -> list[Recipe]:
        """Every saved recipe of the project, most recently changed first."""
        context = self._scope.context()
        return [Recipe._from_api(item, context) for item in context.paginate("recipes")]

    def get(self, name_or_id: int | str) -> Recipe:
        """A recipe by id (int) or exact name (str)."""
        if isinstance(name_or_id, bool) or not isinstance(name_or_id, int | str):
            raise TypeError(f"expected a recipe id (int) or name (str), not {type(name_or_id).__name__}")
        context = self._scope.context()
        if isinstance(name_or_id, int):
            return Recipe._from_api(context.call("GET", f"recipes/{name_or_id}"), context)
        for item in context.paginate("recipes"):
            if item["name"] == name_or_id:
                return Recipe._from_api(item, context)
        raise NotFoundError(
            f"No recipe named {name_or_id!r} in this project.",
            status=404,
            code="not_found",
            detail={"name": name_or_id},
        )

    def preview(
        self,
        version: DatasetVersion | int,
        steps: Sequence[dict],
        upto: int | None = None,
        limit: int = 20,
    ) -> pandas.DataFrame:
        """The first `limit` rows (at most 200) after the first `upto` steps (all when None), as a DataFrame.

        `frame.attrs` holds the column `types` and the server's normalised `steps`.
        """
        context = self._scope.context()
        body = {"version_id": _version_id(version), "steps": list(steps), "upto": upto, "limit": limit}
        return _frame(context.call("POST", "recipes/preview", json=body))

    def apply(
        self,
        version: DatasetVersion | int,
        steps: Sequence[dict] | None = None,
        recipe: Recipe | int | str | None = None,
        dataset_name: str | None = None,
        *,
        wait: bool = True,
        progress: bool = True,
        timeout_s: float | None = None,
    ) -> DatasetVersion | DatasetJob:
        """Apply steps or a saved recipe (a Recipe, its id or its name) to `version` in a worker job.

        The result is a new version of `dataset_name` (default: the source's dataset) whose parent is
        `version`. Returns it when `wait` (JobFailedError if the job fails), else the `DatasetJob`.
        """
        if (steps is None) == (recipe is None):
            raise ValueError("Give either steps or a recipe to apply.")
        recipe_id = None
        if recipe is not None:
            if isinstance(recipe, Recipe):
                recipe_id = recipe.id
            elif isinstance(recipe, int) and not isinstance(recipe, bool):
                recipe_id = recipe
            elif isinstance(recipe, str):
                recipe_id = self.get(recipe).id
            else:
                raise TypeError(f"expected a Recipe, a recipe id or a name, not {type(recipe).__name__}")
        return _apply(
            self._scope.context(),
            version,
            recipe_id=recipe_id,
            steps=steps,
            dataset_name=dataset_name,
            wait=wait,
            progress=progress,
            timeout_s=timeout_s,
        )

    def __repr__(self) -> str:
        return "<studio_sdk.Recipes>"
