"""The transport: one `requests.Session`, auth headers, JSON in/out, error mapping and pagination."""

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from studio_sdk import exceptions
from studio_sdk._version import __version__

API_PATH = "/api/v1/"
_BODY_EXCERPT_CHARS = 300


def normalise_base_url(url: str) -> str:
    """Return the server's root URL without a trailing slash (an `/api/v1` suffix is tolerated)."""
    url = url.strip().rstrip("/")
    if url.endswith(API_PATH.rstrip("/")):
        url = url[: -len(API_PATH.rstrip("/"))]
    if not urlsplit(url).scheme or not urlsplit(url).netloc:
        raise exceptions.ConfigurationError(
            f"Studio URL {url!r} is not an absolute URL; expected e.g. 'http://localhost:8000'."
        )
    return url


class Transport:
    """Send requests to `<base_url>/api/v1/<path>` and turn error answers into typed exceptions."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 30) -> None:
        self.base_url = normalise_base_url(base_url)
        self.api_url = self.base_url + API_PATH
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "User-Agent": f"studio-sdk/{__version__}",
                "Accept": "application/json",
            }
        )

    def close(self) -> None:
        self.session.close()

    def url_for(self, path: str) -> str:
        return self.api_url + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request; return the decoded JSON body (None for an empty answer)."""
        url = self.url_for(path)
        try:
            response = self.session.request(method, url, params=params, json=json, timeout=self.timeout_s)
        except requests.Timeout as error:
            raise exceptions.StudioConnectionError(
                f"Studio at {url} did not answer within {self.timeout_s} s ({type(error).__name__})."
            ) from error
        except requests.RequestException as error:
            raise exceptions.StudioConnectionError(f"Could not reach Studio at {url}: {error}") from error
        if response.status_code >= 400:
            raise _error_from(response, method=method, url=url)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as error:
            raise exceptions.ServerError(
                f"{method} {url} answered {response.status_code} with a body that is not JSON: "
                f"{_excerpt(response.text)}",
                status=response.status_code,
                code="bad_response",
            ) from error

    def paginate(self, path: str, *, params: Mapping[str, Any] | None = None) -> Iterator[dict]:
        """Yield every item of a paginated list, following the `next` links until they run out."""
        query = dict(params or {})
        while True:
            page = self.request("GET", path, params=query)
            yield from page["results"]
            if not page.get("next"):
                return
            # Reuse our own URL with the next link's query: the link's host may be an internal one (behind
            # a proxy), and the bearer token must never follow a link to another host.
            query = dict(parse_qsl(urlsplit(page["next"]).query, keep_blank_values=True))


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text[:_BODY_EXCERPT_CHARS] + ("…" if len(text) > _BODY_EXCERPT_CHARS else "")


def _error_from(response: requests.Response, *, method: str, url: str) -> exceptions.StudioError:
    """Build the typed exception for an error answer, preferring the server's `{"error": {...}}` body."""
    status = response.status_code
    error_class = exceptions.error_class_for(status)
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return error_class(str(error["message"]), status, error.get("code"), error.get("detail"))
    reason = _excerpt(response.text) or response.reason or "no message"
    return error_class(f"{method} {url} failed with HTTP {status}: {reason}", status, None, body)
