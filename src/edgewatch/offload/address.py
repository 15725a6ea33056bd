"""Where an offload server is: the `remote://HOST:PORT` and `ws://` addresses `--detector` and
`detectors: {type: remote, url: ...}` take, and the WebSocket URL each stands for."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from edgewatch.errors import EdgewatchError

#: the server's endpoint; the version in it changes with the protocol's major version
PATH = "/v1/detect"
DEFAULT_PORT = 8765
#: what `--detector` and `detector:` accept as a server's address
URL_SCHEMES = ("remote", "ws", "wss")


def endpoint(url: str) -> tuple[str, str | None]:
    """The WebSocket URL of a server named as `remote://HOST:PORT`, `ws://HOST[:PORT][/PATH]` or
    `wss://...`, and the token a `?token=` in it carries (taken out of the URL, to be sent as a header).

    Raises:
        EdgewatchError: not such an address.

    Example:
        >>> endpoint("remote://10.0.0.5:8765")
        ('ws://10.0.0.5:8765/v1/detect', None)
        >>> endpoint("wss://gpu.example/edge?token=abc")
        ('wss://gpu.example/edge', 'abc')
    """
    hint = "write it as remote://HOST:PORT or ws://HOST:PORT, e.g. remote://10.0.0.5:8765"
    shown = url.partition("?")[0]  # not the token
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise EdgewatchError(f"bad server address {shown}: the port must be a number from 1 to 65535", hint)
    if parts.scheme not in URL_SCHEMES:
        raise EdgewatchError(f"bad server address {shown}: it must start with remote://, ws:// or wss://", hint)
    if not parts.hostname:
        raise EdgewatchError(f"bad server address {shown}: it names no host", hint)
    if parts.username is not None or parts.fragment:
        raise EdgewatchError(f"bad server address {shown}: it may hold no user name or #fragment", hint)
    scheme = "ws" if parts.scheme == "remote" else parts.scheme
    if parts.scheme == "remote" and parts.path not in ("", "/"):
        raise EdgewatchError(f"bad server address {shown}: remote:// takes HOST:PORT only", "use ws://HOST:PORT/PATH")
    if port is None and parts.scheme == "remote":
        port = DEFAULT_PORT
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    query = parse_qsl(parts.query, keep_blank_values=True)
    token = next((value for key, value in query if key == "token"), None) or None
    rest = urlencode([(key, value) for key, value in query if key != "token"])
    path = parts.path if parts.path not in ("", "/") else PATH
    return f"{scheme}://{host}{f':{port}' if port is not None else ''}{path}{f'?{rest}' if rest else ''}", token


def is_remote(name: str) -> bool:
    """Whether a detector name is a server's address (`remote://`, `ws://`, `wss://`)."""
    return name.partition("://")[0] in URL_SCHEMES and "://" in name
