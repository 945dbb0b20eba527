"""Fetching input URLs safely: the one place kinema touches the network on a user's behalf.

Rules, checked for the first URL and again for every redirect:

1. Only ``http``, ``https`` and ``data:`` URLs. The server's own file URLs are read from storage
   by the ``local`` hook before anything else.
2. The host is resolved first and every address it resolves to must be public: loopback,
   private, link-local, multicast, reserved, unspecified, carrier-grade NAT and IPv4-mapped forms
   of those are refused unless ``settings.fetch_allow`` names the host, the address or a CIDR
   holding it. The connection then goes to the checked address (the ``Host`` header and TLS
   server name stay the original host), so a second DNS answer cannot swap it for another.
3. The body is streamed with a byte cap (``settings.fetch_max_bytes``) and an overall deadline
   (``settings.fetch_timeout_s``); a ``Content-Length`` over the cap is refused before reading.

Every refusal is a :class:`~kinema.errors.FetchError` naming the field, so the request completes
with a 422 that says what went wrong.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
import time
import urllib.parse
from collections.abc import Callable, Sequence

import httpx

from kinema.addresses import address_problem
from kinema.errors import FetchError, InputError, error_item
from kinema.schema import KlingInput
from kinema.settings import Settings

__all__ = [
    "Fetcher",
    "Resolver",
    "LocalReader",
    "address_problem",
    "MAX_REDIRECTS",
    "data_uri_size",
    "check_data_uri_sizes",
]

MAX_REDIRECTS = 5
Loc = Sequence[str | int]
#: ``(host, port) -> [ip, ...]``; injectable so tests need no DNS.
Resolver = Callable[[str, int], list[str]]
#: Returns the bytes of one of the server's own file URLs, or ``None`` for any other URL.
LocalReader = Callable[[str], "bytes | None"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _bad_redirect(loc: Loc, scheme: str | None = None) -> FetchError:
    target = f"a {scheme}: URL" if scheme else "a URL that is not http(s)"
    return FetchError(
        [
            error_item(
                loc,
                f"the server redirected to {target}; kinema follows redirects to http and https URLs only",
                "url_scheme",
            )
        ]
    )


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:100] + "…"


def data_uri_size(url: str) -> int | None:
    """How many bytes a ``data:`` URI decodes to (within 2, from its length alone), or ``None`` if not one.

    Percent-escapes count as one byte each; base64 gives 3 bytes per 4 characters (whitespace aside).
    """
    if url[:5].lower() != "data:":
        return None
    header, _, payload = url[5:].partition(",")
    escapes = payload.count("%")
    if header.lower().endswith(";base64"):
        chars = len(payload) - 2 * escapes - sum(payload.count(c) for c in " \t\r\n")
        return max(0, chars) * 3 // 4
    return len(payload) - 2 * escapes


def check_data_uri_sizes(req: KlingInput, max_bytes: int) -> None:
    """At submit: a ``data:`` input that decodes to more than the input cap is a 422 naming its field (the
    worker would refuse it anyway, after the request had been queued and stored)."""
    fields: list[tuple[list[str | int], str | None]] = [
        (["body", "image_url"], req.image_url),
        (["body", "tail_image_url"], req.tail_image_url),
        (["body", "static_mask_url"], req.static_mask_url),
    ]
    fields += [(["body", "dynamic_masks", i, "mask_url"], m.mask_url) for i, m in enumerate(req.dynamic_masks or [])]
    errors = []
    for loc, url in fields:
        size = data_uri_size(url) if url else None
        if size is not None and size > max_bytes + 2:
            errors.append(
                error_item(
                    loc, f"the data URI holds about {size} bytes; at most {max_bytes} are allowed", "fetch_too_large"
                )
            )
    if errors:
        raise InputError(errors)


class Fetcher:
    """Fetches one input URL to bytes under the rules above."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver | None = None,
        local: LocalReader | None = None,
    ):
        self.max_bytes = settings.fetch_max_bytes
        self.timeout_s = settings.fetch_timeout_s
        self.resolver = resolver or _system_resolver
        self.local = local
        self._allow_hosts: set[str] = set()
        self._allow_nets: list[_Network] = []
        for entry in settings.fetch_allow:
            try:
                self._allow_nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._allow_hosts.add(entry.lower().rstrip("."))
        self._transport = transport

    # Public ------------------------------------------------------------------
    def fetch(self, url: str, loc: Loc) -> bytes:
        if self.local is not None:
            data = self.local(url)
            if data is not None:
                return data
        if url.startswith("data:"):
            return self._data_uri(url, loc)
        return self._http(url, loc)

    # data: -------------------------------------------------------------------
    def _data_uri(self, url: str, loc: Loc) -> bytes:
        header, sep, payload = url[5:].partition(",")
        if not sep:
            raise FetchError.single(loc, "the data URI has no ',' before its data", "data_uri_invalid")
        is_base64 = header.lower().endswith(";base64")
        # Refuse before decoding anything that cannot fit the cap: base64 grows 4/3, percent-encoding 3x.
        growth_limit = self.max_bytes * 4 // 3 + 4 if is_base64 else self.max_bytes
        if "%" in payload:
            growth_limit *= 3
        if len(payload) > growth_limit:
            raise FetchError.single(loc, f"the data URI holds more than {self.max_bytes} bytes", "fetch_too_large")
        if is_base64:
            text = urllib.parse.unquote(payload) if "%" in payload else payload
            try:
                data = base64.b64decode("".join(text.split()), validate=True)
            except (binascii.Error, ValueError):
                raise FetchError.single(loc, "the data URI is not valid base64", "data_uri_invalid") from None
        else:
            data = urllib.parse.unquote_to_bytes(payload)
        if len(data) > self.max_bytes:
            raise FetchError.single(loc, f"the data URI holds more than {self.max_bytes} bytes", "fetch_too_large")
        return data

    # http(s) -----------------------------------------------------------------
    def _allowed_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self._allow_hosts

    def _allowed_ip(self, ip: _Address) -> bool:
        return any(ip in net for net in self._allow_nets if net.version == ip.version)

    def _check_target(self, url: httpx.URL, loc: Loc) -> str:
        """Resolve and vet the URL's host; returns the address to connect to."""
        if url.scheme not in {"http", "https"}:
            raise FetchError.single(loc, f"URLs must be http, https or data URIs, got {url.scheme!r}", "url_scheme")
        host = url.host
        if not host:
            raise FetchError.single(loc, "the URL has no host", "url_invalid")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            literal: _Address | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = self.resolver(host, port)
            except (OSError, UnicodeError):
                raise FetchError.single(loc, f"could not resolve the host {host!r}", "fetch_failed") from None
            if not addresses:
                raise FetchError.single(loc, f"could not resolve the host {host!r}", "fetch_failed")
        host_ok = self._allowed_host(host)
        for text in addresses:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            problem = address_problem(ip)
            if problem and not host_ok and not self._allowed_ip(ip):
                where = f"{host} resolves to {ip}" if literal is None else f"{host} is"
                raise FetchError.single(
                    loc,
                    f"{where}, {problem}, which kinema does not fetch (set KINEMA_FETCH_ALLOW to allow it)",
                    "fetch_refused",
                )
        return addresses[0]

    def _http(self, url: str, loc: Loc) -> bytes:
        try:
            current = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise FetchError.single(loc, f"{_short(url)!r} is not a valid URL", "url_invalid") from None
        deadline = time.monotonic() + self.timeout_s
        with httpx.Client(transport=self._transport, follow_redirects=False, trust_env=False) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                address = self._check_target(current, loc)
                target = current.copy_with(host=address)
                headers = {
                    "Host": current.netloc.decode("ascii"),
                    "User-Agent": "kinema-fetch",
                    "Accept": "image/*,*/*;q=0.5",
                    "Accept-Encoding": "identity",
                }
                extensions = {"sni_hostname": current.host} if current.scheme == "https" else {}
                # Every hop (redirects included) shares the one overall deadline.
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FetchError.single(
                        loc, f"fetching {_short(url)} took longer than {self.timeout_s:g} s", "fetch_timeout"
                    )
                request = client.build_request(
                    "GET",
                    target,
                    headers=headers,
                    extensions=extensions,
                    timeout=httpx.Timeout(min(left, 10.0), read=left),
                )
                try:
                    response = client.send(request, stream=True)
                except httpx.TimeoutException:
                    raise FetchError.single(loc, f"fetching {_short(url)} timed out", "fetch_timeout") from None
                except httpx.HTTPError as exc:
                    raise FetchError.single(
                        loc, f"could not fetch {_short(url)}: {type(exc).__name__}", "fetch_failed"
                    ) from None
                except httpx.InvalidURL:
                    # httpx parses a redirect's Location while receiving the response: a data:, mailto: or
                    # javascript: Location fails there, before kinema sees it.
                    raise _bad_redirect(loc) from None
                try:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        if not location:
                            raise FetchError.single(loc, "a redirect had no Location", "fetch_failed")
                        try:
                            current = current.join(location)
                        except (httpx.InvalidURL, ValueError):
                            raise _bad_redirect(loc) from None
                        if current.scheme not in {"http", "https"}:
                            raise _bad_redirect(loc, current.scheme)
                        continue
                    if response.status_code != 200:
                        raise FetchError.single(
                            loc,
                            f"fetching {_short(url)} failed: the server answered HTTP {response.status_code}",
                            "fetch_failed",
                        )
                    return self._read_capped(response, url, loc, deadline)
                finally:
                    response.close()
        raise FetchError.single(loc, f"more than {MAX_REDIRECTS} redirects", "fetch_too_many_redirects")

    def _read_capped(self, response: httpx.Response, url: str, loc: Loc, deadline: float) -> bytes:
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise FetchError.single(
                loc, f"the file is {int(length)} bytes; at most {self.max_bytes} are allowed", "fetch_too_large"
            )
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError.single(loc, f"the file is larger than {self.max_bytes} bytes", "fetch_too_large")
                if time.monotonic() > deadline:
                    raise FetchError.single(
                        loc, f"fetching {_short(url)} took longer than {self.timeout_s:g} s", "fetch_timeout"
                    )
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise FetchError.single(loc, f"fetching {_short(url)} timed out", "fetch_timeout") from None
        except httpx.HTTPError as exc:
            raise FetchError.single(
                loc, f"could not fetch {_short(url)}: {type(exc).__name__}", "fetch_failed"
            ) from None
        return b"".join(chunks)
