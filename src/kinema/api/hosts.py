"""Which ``Host`` headers the server answers to.

Without ``--public-url`` the URLs kinema hands out (``response_url``, file URLs) are built from the request's
``Host`` header, so a forged ``Host`` would put another origin into them, and a DNS-rebinding page could talk to
a server on localhost under its own name. :class:`AllowedHosts` decides from
:attr:`Settings.allowed_hosts <kinema.settings.Settings.allowed_hosts>` (``*`` = any name); by default the
bind address, ``localhost``/``127.0.0.1``/``::1`` and the host of ``public_url``; when bound to a wildcard
address (``0.0.0.0``, ``::``) also this machine's host names and any IP literal (an address cannot be
rebound to another origin). :class:`HostCheckMiddleware` answers every other ``Host`` with 400.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import urllib.parse

from starlette.types import ASGIApp, Receive, Scope, Send

from kinema.settings import Settings

__all__ = ["AllowedHosts", "HostCheckMiddleware", "host_name"]

_LOCAL_NAMES = ("localhost", "127.0.0.1", "::1", "localhost.localdomain")
_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


def host_name(header: str) -> str:
    """The name part of a ``Host`` header: lower case, no port, no brackets, no trailing dot."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _machine_names() -> set[str]:
    names = {socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:  # pragma: no cover - resolver trouble: the plain host name still counts
        pass
    return {n.rstrip(".") for n in names if n}


class AllowedHosts:
    """The ``Host`` names one server answers to (see the module doc)."""

    def __init__(self, settings: Settings):
        configured = {host_name(h) for h in settings.allowed_hosts}
        self.any = "*" in configured
        self.any_ip = False
        names = set(configured) - {"*"}
        if not settings.allowed_hosts:
            names.update(_LOCAL_NAMES)
            bind = host_name(settings.host)
            if bind in _WILDCARDS:
                self.any_ip = True
                names.update(_machine_names())
            else:
                names.add(bind)
        if settings.public_url:
            public = urllib.parse.urlsplit(settings.public_url).hostname
            if public:
                names.add(host_name(public))
        self.names = frozenset(names)

    def describe(self) -> str:
        """For the startup log: ``*``, or the names (and ``any IP`` when IP literals are accepted)."""
        if self.any:
            return "*"
        return ",".join(sorted(self.names) + (["any IP"] if self.any_ip else []))

    def allows(self, header: str | None) -> bool:
        if self.any or header is None:  # HTTP/1.0 without Host: URLs come from the socket's own address
            return True
        name = host_name(header)
        return name in self.names or (self.any_ip and _is_ip(name))


class HostCheckMiddleware:
    """Answers a request whose ``Host`` the server does not answer to with 400 in fal's error shape."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        if self.allowed.allows(header):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "detail": f"this server does not answer to the host {header!r}; add it to KINEMA_ALLOWED_HOSTS "
                "(or set --public-url)",
                "error_type": "host_not_allowed",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-fal-error-type", b"host_not_allowed"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
