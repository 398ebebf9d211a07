"""The review app's guards, safe by default: it listens on 127.0.0.1; any other host needs the token
the command prints (sent once as ?token=, then kept in a cookie, or as a header); every POST carries
the page's CSRF token in a header, which a cross-site form cannot set, and an Origin, when the
browser sends one, must be the app's own."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

TOKEN_COOKIE = "review_token"
TOKEN_HEADER = "x-review-token"
CSRF_HEADER = "x-csrf-token"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Guards:
    """access_token: None when the app listens on the local host only; csrf_token: what every POST's
    X-CSRF-Token header must say (the page embeds it)."""

    access_token: str | None = None
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @classmethod
    def for_host(cls, host: str) -> Guards:
        return cls(access_token=None if host in LOCAL_HOSTS else secrets.token_urlsafe(24))


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _refused(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class GuardMiddleware(BaseHTTPMiddleware):
    """Refuses a request without the access token (403), and a POST without the CSRF token or from
    another origin (403), before any route runs."""

    def __init__(self, app, guards: Guards) -> None:
        super().__init__(app)
        self.guards = guards

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        guards = self.guards
        from_query = request.query_params.get("token")
        if guards.access_token is not None:
            given = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or from_query
            if not _same(given, guards.access_token):
                return _refused(403, "this review server needs the token that `grader review` printed: open the "
                                     "address it printed, with ?token=...")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
                return _refused(403, f"a request from another site ({origin}) is refused")
            if not _same(request.headers.get(CSRF_HEADER), guards.csrf_token):
                return _refused(403, "the request lacks this page's CSRF token (X-CSRF-Token): reload the page")
        response = await call_next(request)
        if guards.access_token is not None and from_query is not None:
            response.set_cookie(TOKEN_COOKIE, guards.access_token, httponly=True, samesite="strict")
        return response
