"""Who may do what, and the protections every response carries.

- Admin actions (training, activation, deletion) are open on loopback, as a local tool's are; when the server
  binds to anything else they need ``Authorization: Bearer <token>``. With no token configured, one is generated
  at start-up and printed, as Jupyter does.
- On loopback, only loopback host names are accepted in the Host header: a web page cannot reach the API through
  DNS rebinding.
- Request bodies over the limit are refused with a 413 before they are read into memory.
- Requests that change something (POST, PUT, PATCH, DELETE) from another site are refused with a 403, on loopback
  too: a plain HTML form on any web page could otherwise cancel a job or save a prediction. Browsers say where a
  request comes from (``Sec-Fetch-Site``, ``Origin``); it must be this server's own origin or one of the allowed
  CORS origins. Clients that are not browsers send neither and are not affected.
- Security headers: a Content-Security-Policy without inline script, nosniff, no framing, no referrer.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from urllib.parse import unquote_to_bytes

from fastapi import HTTPException, Request

from .errors import ApiError, error_response
from .settings import ServerSettings

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
    "connect-src 'self'", "worker-src 'self' blob:", "object-src 'none'", "base-uri 'none'",
    "frame-ancestors 'none'", "form-action 'self'",
])
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
log = logging.getLogger("convscope.server")


def allowed_host_names(settings: ServerSettings) -> list[str] | None:
    """The Host header names a loopback server answers to: the loopback names and the address it was told to bind
    (127.0.0.2, say); None (any) when it serves a network."""
    if not settings.loopback:
        return None
    own = f"[{settings.host}]" if ":" in settings.host else settings.host
    return sorted({*LOOPBACK_HOSTS, own})
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def with_admin_token(settings: ServerSettings) -> tuple[ServerSettings, bool]:
    """The settings with an admin token where one is needed; True when it was generated now."""
    if settings.loopback or settings.admin_token:
        return settings, False
    return settings.model_copy(update={"admin_token": secrets.token_urlsafe(24)}), True


def require_admin(request: Request) -> None:
    """Dependency for admin routes."""
    settings: ServerSettings = request.app.state.settings
    if settings.loopback:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError("this action needs the admin token: Authorization: Bearer <token>", 401)
    if not hmac.compare_digest(given.encode(), settings.admin_token.encode()):
        raise ApiError("wrong admin token", 403)


MIN_BODY_RATE = 64 * 1024  # bytes per second an upload is allowed beyond the body timeout


class SecurityMiddleware:
    """Pure ASGI (no per-request task or body buffering): the body's size limit and deadline, the host and
    cross-site checks, and the security headers."""

    def __init__(self, app, max_body_bytes: int, allowed_hosts: list[str] | None = None,
                 allowed_origins: tuple[str, ...] = (), body_timeout: float = 30.0):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.allowed_hosts = allowed_hosts  # None: any Host header
        self.allowed_origins = set(allowed_origins)  # other sites allowed to call the API (CORS)

    def _cross_site(self, scope) -> bool:
        """Whether a state-changing request comes from a page of another site."""
        if scope["method"] in SAFE_METHODS:
            return False
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1")
        if origin and origin in self.allowed_origins:
            return False
        if headers.get(b"sec-fetch-site", b"same-origin") not in (b"same-origin", b"none"):
            return True
        own = f"{scope.get('scheme', 'http')}://{headers.get(b'host', b'').decode('latin-1')}"
        return bool(origin) and origin != own

    def _host_allowed(self, scope) -> bool:
        if self.allowed_hosts is None:
            return True
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        name = host.rpartition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
        return name in self.allowed_hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        if not self._host_allowed(scope):
            response = error_response(400, "this server answers on loopback host names only (Host header refused)")
            return await response(scope, receive, send_with_headers)
        if self._cross_site(scope):
            response = error_response(403, "cross-site request refused: changes come only from this server's own "
                                           "pages (or an allowed origin)")
            return await response(scope, receive, send_with_headers)
        if "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            # PostgreSQL refuses NUL in text: as a filter or a name it would reach the database as a 500
            response = error_response(422, "the URL may not contain NUL (%00) characters")
            return await response(scope, receive, send_with_headers)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            response = error_response(413, self._too_large_message(), headers={"connection": "close"})
            return await response(scope, receive, send_with_headers)

        received, body_complete = 0, False
        # One deadline for the whole body, from now: per read, a client sending a byte a minute would never be cut
        # off. A big declared body gets a second per MIN_BODY_RATE bytes more, for honest uploads on slow links.
        allowed = self.body_timeout + (int(declared) if declared else 0) / MIN_BODY_RATE
        deadline = asyncio.get_running_loop().time() + allowed

        async def limited_receive():
            nonlocal received, body_complete
            if body_complete:  # after the body, receive() waits for the client to leave (an event stream): no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:  # a client that sends its body slowly or not at all holds a worker's attention
                raise HTTPException(408, f"the request's body did not arrive within {allowed:g} s",
                                    headers={"connection": "close"}) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > self.max_body_bytes:  # a chunked body that grew past the limit
                    # FastAPI passes an HTTPException raised while reading the body on to the error handlers.
                    raise HTTPException(413, self._too_large_message())
            return message

        started = False

        async def send_tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self.app(scope, limited_receive, send_tracked)
        except Exception:
            # A bug: logged here, and answered here so the 500 carries the security headers too (Starlette's
            # outermost error middleware would answer without them).
            if started:
                raise
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            response = error_response(500, "internal error: the server logged the details")
            await response(scope, receive, send_with_headers)

    def _too_large_message(self) -> str:
        return f"request body over the limit of {self.max_body_bytes:,} bytes"
