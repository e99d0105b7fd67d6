"""The identity provider of Studio's JupyterLab servers, loaded inside the Jupyter process (no Django).

Only Studio's proxy talks to a server: it authenticates the browser's session, then adds
`Authorization: token <server token>` and `X-Studio-User`. This provider accepts that header and nothing
else: no `?token=` in URLs, no login page, no login cookie (a cookie would let anything that shares the
browser's cookie jar for 127.0.0.1 reach the port directly). Its `token` trait stays empty so that
JupyterLab's page config and the server's runtime file never carry the secret to a browser.
"""

import hmac
import os
import re

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets import default

TOKEN_ENV = "JUPYTER_TOKEN"  # noqa: S105 (the variable's name)
_HEADER = re.compile(r"token\s+(\S+)", re.IGNORECASE)
_USERNAME = re.compile(r"[\w.@+-]{1,150}")


class StudioIdentityProvider(IdentityProvider):
    @default("token")
    def _token_default(self):
        return ""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Popped so that kernels and terminals (children of this process) do not inherit it.
        self._secret = os.environ.pop(TOKEN_ENV, "")
        if len(self._secret) < 32:
            raise SystemExit(f"{TOKEN_ENV} must hold the server's token (32+ characters)")

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return False

    @property
    def logout_available(self) -> bool:
        return False

    def get_handlers(self):
        return []

    def validate_security(self, app, ssl_options=None) -> None:
        return None

    def get_user(self, handler):
        match = _HEADER.fullmatch(handler.request.headers.get("Authorization", "").strip())
        if match is None or not hmac.compare_digest(match.group(1).encode(), self._secret.encode()):
            return None
        # The proxy sets the header after checking the Studio session and strips any the browser sent.
        username = handler.request.headers.get("X-Studio-User", "")
        if not _USERNAME.fullmatch(username):
            username = "studio"
        handler._token_authenticated = True
        return User(username=username, name=username, display_name=username)
