"""The entry point: `Client(url, token)` with one attribute per resource."""

import os
from typing import Any

from studio_sdk._http import Transport
from studio_sdk.datasets import Datasets, ProjectScope
from studio_sdk.exceptions import ConfigurationError
from studio_sdk.hpo import Hpo
from studio_sdk.projects import Project, Projects
from studio_sdk.recipes import Recipes
from studio_sdk.runs import Runs
from studio_sdk.training import Training

URL_ENV = "STUDIO_URL"
TOKEN_ENV = "STUDIO_TOKEN"  # noqa: S105 (the variable's name, not a secret)


class Client:
    """A Studio API client; `url` and `token` default to the STUDIO_URL and STUDIO_TOKEN variables.

    `project` (an id, a name or a Project; default STUDIO_PROJECT, else the token's project, else the only
    one the token sees) is where `datasets`, `recipes`, `runs` and `training` work.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        project: int | str | Project | None = None,
        timeout_s: float = 30,
    ) -> None:
        url = url or os.environ.get(URL_ENV)
        token = token or os.environ.get(TOKEN_ENV)
        if not url:
            raise ConfigurationError(
                f"No Studio URL: pass Client(url=...) or set the {URL_ENV} environment variable."
            )
        if not token:
            raise ConfigurationError(
                f"No API token: pass Client(token=...) or set the {TOKEN_ENV} environment variable "
                "(create one under Account → API tokens)."
            )
        self._http = Transport(url, token.strip(), timeout_s=timeout_s)
        self.projects = Projects(self._http)
        self._scope = ProjectScope(self._http, project)
        self.datasets = Datasets(self._http, self._scope)
        self.recipes = Recipes(self._http, self._scope)
        self.runs = Runs(self._http, self._scope)
        self.training = Training(self._http, self._scope)
        self.hpo = Hpo(self._http, self._scope)

    @property
    def url(self) -> str:
        return self._http.base_url

    @property
    def project(self) -> Project:
        """The project `datasets`, `recipes` and `runs` work in (resolved on first use)."""
        return self.projects.get(self._scope.id)

    def use_project(self, project: Any) -> "Client":
        """Make `datasets`, `recipes` and `runs` work in another project (an id, a name or a Project)."""
        self._scope.use(project)
        return self

    def whoami(self) -> dict:
        """Return the token's user: id, username, email, is_staff, auth, token_project_id."""
        return self._http.request("GET", "me")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<studio_sdk.Client url={self.url!r}>"
