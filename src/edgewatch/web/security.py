"""What the web server promises every request, in one place (docs/security.md): it answers only to
its own names (Host), only with the token when it has one, takes no write that another site asks for
(Origin, Sec-Fetch-Site and a per-session CSRF token) nor a WebSocket another site's page opens, caps
request bodies without reading them whole, and answers every refusal in one line that never repeats
the input.

`guarded_app` makes the FastAPI app of the dashboard and of `edgewatch review` with all of it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import secrets
import socket
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from edgewatch.errors import EdgewatchError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024  # the largest body the API takes is one image's boxes: a few KB
MIN_TOKEN_LENGTH = 16
MIN_TOKEN_SYMBOLS = 6  # different characters: "aaaaaaaaaaaaaaaa" is long and still a guess away
MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(24))"'
TOKEN_COOKIE = "edgewatch_token"
SESSION_COOKIE = "edgewatch_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
MAX_REASON = 200  # characters of an error's one line
UNKNOWN_HOST = "unknown Host: this server answers only to the names it is served on (docs/security.md)"
OTHER_SITE = "refused: another site or origin asked for this change; make it from the edgewatch page itself"
OTHER_ORIGIN_SOCKET = "refused: a page of another site or origin opened this WebSocket (Origin); connect from a program"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str | None, host: str) -> None:
    """Refuse a token a network could guess; on loopback only warn (there it keeps other local users
    out, and any token does that better than none).

    Raises:
        EdgewatchError: `host` is not loopback and `token` is shorter than MIN_TOKEN_LENGTH or has
            fewer than MIN_TOKEN_SYMBOLS different characters.
    """
    if token is None or (len(token) >= MIN_TOKEN_LENGTH and len(set(token)) >= MIN_TOKEN_SYMBOLS):
        return
    problem = (
        f"the token is too easy to guess (it needs {MIN_TOKEN_LENGTH}+ characters, {MIN_TOKEN_SYMBOLS}+ different)"
    )
    if is_loopback(host):
        log.warning("%s; make a strong one with %s", problem, MAKE_TOKEN)
        return
    raise EdgewatchError(f"serving on {host}: {problem}", f"make one with {MAKE_TOKEN}")


@dataclass(frozen=True)
class Hosts:
    """The names a server answers to in the `Host` header, so that a DNS name rebound to its address
    (DNS rebinding) reaches the socket but not the API.

    Starlette's TrustedHostMiddleware takes exact names and `*.domain` only; a server bound to every
    interface must also answer to whichever of its addresses a user typed, hence `any_address`.

    Example:
        >>> Hosts.bound_to("127.0.0.1").allows("localhost:8080")
        True
        >>> Hosts.bound_to("127.0.0.1").allows("evil.example:8080")
        False
    """

    names: frozenset[str]
    any_address: bool = False

    @classmethod
    def bound_to(cls, host: str, names: Iterable[str] = ()) -> Hosts:
        """The hosts of a server bound to `host`: that address, the loopback names where loopback
        reaches it, and `names` (such as `dashboard: {hosts: [...]}`). Bound to every interface
        (`0.0.0.0`, `::`), any IP address and this machine's name (and `NAME.local`) too."""
        wildcard = host in WILDCARDS
        known = {name.strip().strip("[]").lower() for name in names if name.strip()}
        known.add(host.strip("[]").lower())
        if wildcard or is_loopback(host):
            known |= LOOPBACK_NAMES
        if wildcard:
            machine = socket.gethostname().lower()
            known |= {machine, f"{machine}.local"}
        return cls(frozenset(known - WILDCARDS), wildcard)

    def allows(self, header: str | None) -> bool:
        name = _host_name(header)
        if name is None:
            return False
        if name in self.names:
            return True
        if not self.any_address:
            return False
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


def _host_name(header: str | None) -> str | None:
    """The name of a `Host` header ("[::1]:8080" → "::1"), or None if it is no valid host."""
    if not header:
        return None
    try:
        parts = urlsplit(f"//{header}")
        parts.port  # noqa: B018 - raises ValueError on a port that is no number
    except ValueError:
        return None
    if parts.hostname is None or parts.username is not None or parts.path:
        return None
    return parts.hostname.rstrip(".") if parts.hostname != "." else None


def _origin(scheme: str, netloc: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(f"{scheme}://{netloc}")
    default = {"http": 80, "https": 443}.get(scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return scheme, parts.hostname, port


class CsrfTokens:
    """Per-session anti-forgery tokens, as a signed double submit (OWASP): the session is a random
    cookie, its token an HMAC of it under this server's own secret. The page asks `GET /api/csrf` for
    its token and sends it back in `X-CSRF-Token`; another origin can make the browser send the cookie
    but can read neither answer, and a cookie it sets itself (another port of the same host can) has
    no token it could know."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    def token(self, session: str) -> str:
        return hmac.new(self._secret, session.encode(), hashlib.sha256).hexdigest()

    def valid(self, session: str | None, token: str | None) -> bool:
        if not session or not token:
            return False
        return hmac.compare_digest(self.token(session).encode(), token.encode())


class RequestGuard:
    """ASGI middleware, in order: the Host must be one of `hosts` (400), the token must be offered
    when there is one (401), and a write (any method but GET, HEAD, OPTIONS) must come from the
    server's own origin with the session's CSRF token (403), as must a WebSocket that names an Origin
    (403; a browser always does). A request authenticated by its `Authorization` header needs no CSRF
    token: no other site can make a browser send that header. Pure ASGI, so the live streams pass
    through unbuffered."""

    def __init__(self, app: ASGIApp, hosts: Hosts, token: str | None, csrf: CsrfTokens) -> None:
        self.app, self.hosts, self.token, self.csrf = app, hosts, token, csrf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        refusal = self._refusal(connection)
        if refusal is not None:
            status, reason = refusal
            if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
                await WebSocketClose(code=1008, reason=reason)(scope, receive, send)
            else:  # a WebSocket handshake too is answered as HTTP where the server can (uvicorn can)
                await JSONResponse({"detail": reason}, status)(scope, receive, send)
            return
        if self.token is not None and connection.query_params.get("token"):
            send = self._with_token_cookie(send)
        await self.app(scope, receive, send)

    def _refusal(self, connection: HTTPConnection) -> tuple[int, str] | None:
        headers = connection.headers
        if not self.hosts.allows(headers.get("host")):
            return 400, UNKNOWN_HOST
        by_header = False
        if self.token is not None:
            offered = connection.query_params.get("token") or connection.cookies.get(TOKEN_COOKIE)
            authorization = headers.get("authorization", "")
            if authorization.lower().startswith("bearer "):
                offered, by_header = authorization[7:], True
            if offered is None or not hmac.compare_digest(offered.encode(), self.token.encode()):
                return 401, "a token is needed: Authorization: Bearer <token>, or ?token="
        if connection.scope["type"] == "websocket":
            return self._websocket_refusal(connection)
        if connection.scope["method"] in SAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return 403, OTHER_SITE
        origin = headers.get("origin")
        if origin is not None:
            own = _origin(connection.url.scheme, headers.get("host", ""))
            offered_origin = urlsplit(origin)
            if origin == "null" or _origin(offered_origin.scheme, offered_origin.netloc) != own:
                return 403, OTHER_SITE
        if not by_header and not self.csrf.valid(connection.cookies.get(SESSION_COOKIE), headers.get(CSRF_HEADER)):
            return 403, (
                f"refused: this change needs the page's {CSRF_HEADER} header; reload the page "
                "(scripts: GET /api/csrf, then send its token with its cookie)"
            )
        return None

    @staticmethod
    def _websocket_refusal(connection: HTTPConnection) -> tuple[int, str] | None:
        """A WebSocket is not covered by CORS: a page of any site may open one to this server, with the
        browser's cookies. Browsers always name the page's origin; only this server's own may connect.
        Programs send no Origin and are let through (to the token, when there is one)."""
        origin = connection.headers.get("origin")
        if origin is None:
            return None
        scheme = "https" if connection.url.scheme == "wss" else "http"
        offered = urlsplit(origin)
        own = _origin(scheme, connection.headers.get("host", ""))
        if origin == "null" or _origin(offered.scheme, offered.netloc) != own:
            return 403, OTHER_ORIGIN_SOCKET
        return None

    def _with_token_cookie(self, send: Send) -> Send:
        """`send`, adding the token's cookie to the answer: `?token=` once, then the cookie holds it."""
        cookie = Response()
        cookie.set_cookie(TOKEN_COOKIE, self.token or "", httponly=True, samesite="strict")
        value = cookie.headers["set-cookie"]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", value)
            await send(message)

        return sending


class FiniteJSONRoute(APIRoute):
    """A route whose JSON body may hold no NaN or infinite number: Python's parser reads `1e309` as
    infinity and `NaN` as NaN, which no box, score or time can be, and which JSON cannot carry back."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(_FiniteJSONRequest(request.scope, request.receive))

        return handle


class _FiniteJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            parsed = json.loads(await self.body())
            if not _finite(parsed):
                # FastAPI answers a JSONDecodeError as a 422 that names the body
                raise json.JSONDecodeError("numbers must be finite (no NaN, Infinity or 1e309)", "", 0)
            self._json = parsed
        return self._json


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    return True


def one_line(text: Any) -> str:
    """`text` as one line of at most MAX_REASON characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 1] + "…"


async def _validation_failed(request: Request, error: Exception) -> Response:
    """422 with the first problem in one line, where it is and what is wrong; never the input (FastAPI's
    own answer repeats it, a 300 MB body included)."""
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    where = " ".join(str(part) for part in first.get("loc", ())[:1])
    path = ".".join(str(part) for part in first.get("loc", ())[1:])
    if first.get("type") == "json_invalid":
        path = ""  # the location is a character offset into the body
    reason = first.get("msg", "invalid")
    if first.get("type") == "json_invalid" and (detail := first.get("ctx", {}).get("error")):
        reason = f"not JSON: {detail}"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return JSONResponse({"detail": one_line(f"{where} {path}: {reason}{more}".strip())}, 422)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 413:
        detail = f"the request body is over {MAX_BODY_BYTES // (1024 * 1024)} MB"
    else:
        detail = one_line(error.detail)
    return await http_exception_handler(request, HTTPException(error.status_code, detail, error.headers))


def guarded_app(title: str, description: str, hosts: Hosts, token: str | None = None) -> FastAPI:
    """A FastAPI app for `hosts`, behind `token` if given, with every promise of this module and the
    route `GET /api/csrf` that gives a browser session its CSRF token.

    Example:
        >>> app = guarded_app("edgewatch review", "Review labels.", Hosts.bound_to("127.0.0.1"))
    """
    app = FastAPI(title=title, description=description, max_body_size=MAX_BODY_BYTES)
    csrf = CsrfTokens()
    app.add_middleware(RequestGuard, hosts=hosts, token=token, csrf=csrf)
    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(HTTPException, _http_error)

    @app.get("/api/csrf", summary=f"This browser session's CSRF token, to send back in {CSRF_HEADER}")
    def csrf_token(request: Request, response: Response) -> dict[str, str]:
        session = request.cookies.get(SESSION_COOKIE)
        if not session or len(session) > 64:
            session = secrets.token_urlsafe(24)
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict")
        response.headers["cache-control"] = "no-store"
        return {"token": csrf.token(session)}

    return app
