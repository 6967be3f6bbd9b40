"""Who may read the worker's web pages: a credential beyond loopback.

The wallboard shows ticket ids and customers, so every page and API of a worker's web
server except ``/healthz``, ``/readyz`` and ``/metrics`` (what orchestrators and
Prometheus read) needs the credential ``SLAWATCH_WEB_AUTH_TOKEN`` (or the first line of
``SLAWATCH_WEB_AUTH_TOKEN_FILE``) whenever one is set, and a worker bound beyond loopback
refuses to start without one. A client shows it as

- ``Authorization: Bearer <token>`` (scripts, a reverse proxy);
- basic auth with the token as the password, any user name (a browser asks once);
- ``?token=<token>`` on the first URL (a wall screen with no keyboard): the server answers
  with a cookie holding it (HttpOnly, SameSite=Strict) and a redirect to the same URL
  without it, so the token leaves the address bar and later requests, the page's live
  updates included, carry the cookie.

Tokens are compared in constant time. The HTTP ingest's routes (``/ingest/...``) check a
credential of their own (:mod:`slawatch.web.ingest_auth`), so the web token does not
apply to them: a webhook sender shows one credential, not two.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from slawatch.config.settings import Settings
from slawatch.errors import SlawatchError

#: Paths open to anyone who can reach the port.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
COOKIE = "slawatch_token"
#: The HTTP ingest's paths: they check their own credential.
INGEST_PREFIX = "/ingest/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def web_token(settings: Settings) -> str | None:
    """The credential the web server asks for (None: none set). Raises
    :class:`SlawatchError` naming the setting for an unreadable or empty token file, both
    settings at once, or no credential on a server bound beyond loopback."""
    token: str | None = str(settings.web_auth_token) or None
    if settings.web_auth_token_file:
        if token is not None:
            raise SlawatchError(
                "set SLAWATCH_WEB_AUTH_TOKEN or SLAWATCH_WEB_AUTH_TOKEN_FILE, not both"
            )
        path = Path(settings.web_auth_token_file)
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise SlawatchError(
                f"SLAWATCH_WEB_AUTH_TOKEN_FILE: cannot read {path}: {exc.strerror}"
            ) from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise SlawatchError(f"SLAWATCH_WEB_AUTH_TOKEN_FILE: {path} holds no token")
    if token is None and not is_loopback(settings.web_host):
        raise SlawatchError(
            f"SLAWATCH_WEB_HOST={settings.web_host} serves beyond loopback, and the wallboard "
            "shows ticket ids and customers: set SLAWATCH_WEB_AUTH_TOKEN or "
            "SLAWATCH_WEB_AUTH_TOKEN_FILE"
        )
    return token


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def _presented(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and _same(value.strip(), token):
        return True
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        if _same(decoded.partition(":")[2], token):
            return True
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and _same(cookie, token)


Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def access_middleware(token: str | None) -> Middleware:
    """An aiohttp middleware asking every request but :data:`OPEN_PATHS` for ``token``
    (None: everything is open, a loopback-only server without a token)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            token is None
            or request.path in OPEN_PATHS
            or request.path.startswith(INGEST_PREFIX)
            or _presented(request, token)
        ):
            return await handler(request)
        given = request.query.get("token")
        if given is not None and _same(given, token):
            query = request.rel_url.query.copy()
            del query["token"]
            location = str(request.rel_url.with_query(query))
            response = web.Response(status=303, headers={"Location": location})
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            return response
        # Only a page asks the browser for basic auth: a login dialog popping up for the
        # wallboard's live updates would wait forever on a screen without a keyboard.
        asks = "text/html" in request.headers.get("Accept", "")
        return web.Response(
            status=401,
            text="slawatch: this page needs the web token (Authorization: Bearer, basic auth "
            "password, or ?token= once)\n",
            headers={"WWW-Authenticate": 'Basic realm="slawatch", charset="UTF-8"'} if asks else {},
        )

    return check
