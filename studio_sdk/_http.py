"""The transport: one `requests.Session`, auth headers, JSON in/out, error mapping and pagination."""

from collections.abc import Iterator, Mapping
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from studio_sdk import exceptions
from studio_sdk._version import __version__

API_PATH = "/api/v1/"
_BODY_EXCERPT_CHARS = 300
UPLOAD_READ_TIMEOUT_S = 600
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


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
        response = self._send(method, url, params=params, json=json)
        return _decoded(response, method=method, url=url)

    def upload(
        self,
        path: str,
        body: IO[bytes],
        *,
        params: Mapping[str, Any] | None = None,
        content_type: str = "application/octet-stream",
    ) -> Any:
        """POST a file object as the raw body, streamed (requests reads it in blocks, with Content-Length).

        The read timeout is longer than usual: the server answers only once the whole body is on its disk.
        """
        url = self.url_for(path)
        response = self._send(
            "POST",
            url,
            params=params,
            data=body,
            headers={"Content-Type": content_type},
            timeout=(self.timeout_s, max(self.timeout_s, UPLOAD_READ_TIMEOUT_S)),
        )
        return _decoded(response, method="POST", url=url)

    def download(
        self, path: str, destination: IO[bytes], *, params: Mapping[str, Any] | None = None
    ) -> CaseInsensitiveDict:
        """GET a file and write it to `destination` in chunks, never whole in memory; return the headers."""
        url = self.url_for(path)
        response = self._send("GET", url, params=params, stream=True, headers={"Accept": "*/*"})
        try:
            for chunk in response.iter_content(chunk_size=DOWNLOAD_CHUNK_BYTES):
                destination.write(chunk)
        except requests.RequestException as error:
            raise exceptions.StudioConnectionError(
                f"The download from {url} was interrupted: {error}"
            ) from error
        finally:
            response.close()
        return response.headers

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send a request; raise a typed error for a transport failure or an error answer."""
        timeout_s = kwargs.setdefault("timeout", self.timeout_s)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.Timeout as error:
            waited_s = timeout_s[-1] if isinstance(timeout_s, tuple) else timeout_s
            raise exceptions.StudioConnectionError(
                f"Studio at {url} did not answer within {waited_s} s ({type(error).__name__})."
            ) from error
        except requests.RequestException as error:
            raise exceptions.StudioConnectionError(f"Could not reach Studio at {url}: {error}") from error
        if response.status_code >= 400:
            try:
                raise _error_from(response, method=method, url=url)
            finally:
                response.close()
        return response

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


def _decoded(response: requests.Response, *, method: str, url: str) -> Any:
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
