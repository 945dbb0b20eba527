"""kinema.media.fetch against a real loopback HTTP server (and injected DNS answers)."""

from __future__ import annotations

import base64
import http.server
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from conftest import data_uri

from kinema.errors import FetchError, InputError
from kinema.media.fetch import MAX_REDIRECTS, Fetcher, address_problem
from kinema.settings import Settings

LOC = ["body", "image_url"]
BODY = bytes(range(256)) * 40  # 10 240 bytes
BIG_TOTAL = 64 * 1024 * 1024


@dataclass
class Seen:
    """What the server saw: one (path, Host header) per request, and the chunked handler's byte count."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    chunked_sent: int = 0
    chunked_done: threading.Event = field(default_factory=threading.Event)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: Seen

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.seen.requests.append((self.path, self.headers.get("Host", "")))
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        path = url.path
        if path == "/photo":
            self._send(200, BODY, {"Content-Type": "application/octet-stream"})
        elif path == "/redirect":
            self._send(302, b"", {"Location": query["to"][0]})
        elif path.startswith("/hop/"):
            n = int(path.rsplit("/", 1)[1])
            self._send(302, b"", {"Location": f"/hop/{n + 1}"})
        elif path.startswith("/slowhop/"):
            n = int(path.rsplit("/", 1)[1])
            time.sleep(0.25)
            self._send(302, b"", {"Location": f"/slowhop/{n + 1}"})
        elif path == "/declared-big":
            # Headers announce far more than the cap; the body only follows after a pause.
            self.send_response(200)
            self.send_header("Content-Length", str(BIG_TOTAL))
            self.end_headers()
            self.wfile.flush()
            time.sleep(2.0)
            self.wfile.write(b"\0" * 1024)
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"\xab" * 65536
            try:
                while self.seen.chunked_sent < BIG_TOTAL:
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    self.seen.chunked_sent += len(chunk)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            finally:
                self.seen.chunked_done.set()
        elif path == "/slow-headers":
            time.sleep(2.0)
            self._send(200, BODY)
        elif path == "/trickle":
            # Each byte arrives well within a read timeout, but the whole body never ends in time.
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        else:
            self._send(404, b"not here")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:  # clients hang up on purpose
        pass


class _Server6(_Server):
    address_family = socket.AF_INET6


@dataclass
class Served:
    port: int
    seen: Seen

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def _serve(server_cls: type[_Server], host: str) -> Iterator[Served]:
    seen = Seen()
    handler = type("Handler", (_Handler,), {"seen": seen})
    server = server_cls((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Served(server.server_address[1], seen)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def served() -> Iterator[Served]:
    yield from _serve(_Server, "127.0.0.1")


def resolver_for(answers: dict[str, list[str]], calls: list[tuple[str, int]] | None = None):
    """An injected DNS: fixed answers per name; unknown names fail like NXDOMAIN."""

    def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append((host, port))
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


def refusal(fetcher: Fetcher, url: str) -> dict:
    with pytest.raises(FetchError) as info:
        fetcher.fetch(url, LOC)
    assert isinstance(info.value, InputError)
    [item] = info.value.errors
    assert item["loc"] == LOC
    return item


LOOPBACK_OK = Settings(fetch_allow=("127.0.0.1",))


# data: URIs ------------------------------------------------------------------------------------
def test_data_uri_base64_round_trips(photo_png: bytes) -> None:
    assert Fetcher(Settings()).fetch(data_uri(photo_png), LOC) == photo_png


def test_data_uri_percent_encoded() -> None:
    fetcher = Fetcher(Settings())
    assert fetcher.fetch("data:text/plain,hello%20world%21", LOC) == b"hello world!"
    raw = bytes(range(256))
    assert fetcher.fetch("data:application/octet-stream," + urllib.parse.quote_from_bytes(raw), LOC) == raw


def test_data_uri_percent_encoded_within_cap_is_not_refused_for_its_length() -> None:
    raw = bytes(range(128, 256)) * 8  # 1024 bytes, each percent-encoded as three characters
    payload = urllib.parse.quote_from_bytes(raw)
    assert len(payload) > 3000
    fetcher = Fetcher(Settings(fetch_max_bytes=1024))
    assert fetcher.fetch("data:application/octet-stream," + payload, LOC) == raw
    item = refusal(Fetcher(Settings(fetch_max_bytes=1023)), "data:application/octet-stream," + payload)
    assert item["type"] == "fetch_too_large"


def test_data_uri_at_cap_accepted_and_over_cap_refused() -> None:
    fetcher = Fetcher(Settings(fetch_max_bytes=1000))
    assert fetcher.fetch(data_uri(b"\x01" * 1000), LOC) == b"\x01" * 1000
    item = refusal(fetcher, data_uri(b"\x01" * 1001))
    assert item["type"] == "fetch_too_large"
    assert "1000" in item["msg"]
    huge = refusal(fetcher, "data:image/png;base64," + "A" * 1_000_000)
    assert huge["type"] == "fetch_too_large"


def test_data_uri_malformed() -> None:
    fetcher = Fetcher(Settings())
    no_comma = refusal(fetcher, "data:image/png;base64")
    assert no_comma["type"] == "data_uri_invalid"
    bad = refusal(fetcher, "data:image/png;base64,@@@@not*base64")
    assert bad["type"] == "data_uri_invalid"
    assert "base64" in bad["msg"]


def test_data_uri_base64_with_whitespace_and_upper_case_marker() -> None:
    raw = b"kinema test bytes" * 20
    encoded = base64.b64encode(raw).decode()
    wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
    assert Fetcher(Settings()).fetch("data:image/png;BASE64," + wrapped, LOC) == raw


# http: allowed fetches ------------------------------------------------------------------------
def test_loopback_fetch_when_allowed(served: Served) -> None:
    assert Fetcher(LOOPBACK_OK).fetch(served.url("/photo"), LOC) == BODY
    assert served.seen.requests == [("/photo", f"127.0.0.1:{served.port}")]


def test_cidr_allow_entry(served: Served) -> None:
    assert Fetcher(Settings(fetch_allow=("127.0.0.0/8",))).fetch(served.url("/photo"), LOC) == BODY
    item = refusal(Fetcher(Settings(fetch_allow=("10.0.0.0/8", "192.168.0.0/16"))), served.url("/photo"))
    assert item["type"] == "fetch_refused"
    assert served.seen.requests == [("/photo", f"127.0.0.1:{served.port}")]


def test_ipv6_loopback_when_allowed() -> None:
    gen = _serve(_Server6, "::1")
    server = next(gen)
    try:
        assert Fetcher(Settings(fetch_allow=("::1/128",))).fetch(server.url("/photo", "[::1]"), LOC) == BODY
        assert server.seen.requests == [("/photo", f"[::1]:{server.port}")]
    finally:
        gen.close()


def test_connection_goes_to_vetted_address_with_original_host_header(served: Served) -> None:
    calls: list[tuple[str, int]] = []
    fetcher = Fetcher(
        Settings(fetch_allow=("images.example",)),
        resolver=resolver_for({"images.example": ["127.0.0.1"]}, calls),
    )
    assert fetcher.fetch(served.url("/photo", "images.example"), LOC) == BODY
    assert calls == [("images.example", served.port)]
    assert served.seen.requests == [("/photo", f"images.example:{served.port}")]


def test_allowed_name_does_not_allow_its_address_under_another_name(served: Served) -> None:
    fetcher = Fetcher(
        Settings(fetch_allow=("images.example",)),
        resolver=resolver_for({"images.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]}),
    )
    item = refusal(fetcher, served.url("/photo", "other.example"))
    assert item["type"] == "fetch_refused"
    assert "other.example resolves to 127.0.0.1" in item["msg"]
    assert served.seen.requests == []


def test_local_hook_is_used_before_the_network(served: Served) -> None:
    asked: list[str] = []
    own = "http://kinema.internal/files/abc/x.png"

    def local(url: str) -> bytes | None:
        asked.append(url)
        return b"own file" if url == own else None

    calls: list[tuple[str, int]] = []
    fetcher = Fetcher(LOOPBACK_OK, local=local, resolver=resolver_for({}, calls))
    assert fetcher.fetch(own, LOC) == b"own file"
    assert calls == [] and served.seen.requests == []
    # Anything the hook does not know goes on to the network (and data: URIs are decoded as usual).
    assert fetcher.fetch(served.url("/photo"), LOC) == BODY
    assert fetcher.fetch("data:text/plain,hi", LOC) == b"hi"
    assert asked == [own, served.url("/photo"), "data:text/plain,hi"]


# http: refusals before connecting --------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:9/x.png", "loopback"),
        ("http://10.1.2.3/x.png", "private"),
        ("http://192.168.1.20/x.png", "private"),
        ("http://172.16.5.4/x.png", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://100.64.3.2/x.png", "carrier-grade NAT"),
        ("http://224.0.0.1/x.png", "multicast"),
        ("http://0.0.0.0/x.png", "unspecified"),
        ("http://[::1]/x.png", "loopback"),
        ("http://[::ffff:127.0.0.1]/x.png", "IPv4-mapped"),
        ("http://[fe80::1]/x.png", "link-local"),
        ("http://[fd00::5]/x.png", "private"),
    ],
)
def test_non_public_literal_addresses_refused(url: str, words: str) -> None:
    calls: list[tuple[str, int]] = []
    item = refusal(Fetcher(Settings(), resolver=resolver_for({}, calls)), url)
    assert item["type"] == "fetch_refused"
    assert words in item["msg"]
    assert "KINEMA_FETCH_ALLOW" in item["msg"]
    assert calls == []


def test_ipv4_mapped_loopback_names_the_inner_problem() -> None:
    item = refusal(Fetcher(Settings()), "http://[::ffff:7f00:1]:8080/a.png")
    assert "loopback" in item["msg"] and "IPv4-mapped" in item["msg"]


@pytest.mark.parametrize("host", ["localhost", "127.1", "2130706433", "0x7f.1"])
def test_system_resolver_spellings_of_loopback_refused(served: Served, host: str) -> None:
    item = refusal(Fetcher(Settings()), served.url("/photo", host))
    assert item["type"] == "fetch_refused"
    assert "127.0.0.1" in item["msg"] and "loopback" in item["msg"]
    assert served.seen.requests == []


def test_name_resolving_to_private_address_refused() -> None:
    fetcher = Fetcher(Settings(), resolver=resolver_for({"cdn.example": ["93.184.216.34", "10.0.0.7"]}))
    item = refusal(fetcher, "http://cdn.example/cat.png")
    assert item["type"] == "fetch_refused"
    assert "cdn.example resolves to 10.0.0.7" in item["msg"] and "private" in item["msg"]


def test_unresolvable_name() -> None:
    item = refusal(Fetcher(Settings(), resolver=resolver_for({})), "http://nowhere.example/cat.png")
    assert item["type"] == "fetch_failed"
    assert "resolve" in item["msg"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x.png", "gopher://example.com/"])
def test_non_http_schemes_refused(url: str) -> None:
    item = refusal(Fetcher(Settings()), url)
    assert item["type"] == "url_scheme"


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("2002:c0a8:101::1", "a 6to4 address"),
        ("2002:7f00:1::1", "a 6to4 address"),
        ("fec0::1", "a site-local address"),
        ("feff:ffff::1", "a site-local address"),
    ],
)
def test_6to4_and_site_local_targets_refused(address: str, words: str) -> None:
    # Python's ipaddress calls these global; 6to4 relays to the IPv4 address inside it (here 192.168.1.1
    # and 127.0.0.1), site-local is the deprecated private range of IPv6.
    by_name = refusal(Fetcher(Settings(), resolver=resolver_for({"v6.example": [address]})), "http://v6.example/x.png")
    assert by_name["type"] == "fetch_refused" and words in by_name["msg"]
    literal = refusal(Fetcher(Settings()), f"http://[{address}]/x.png")
    assert literal["type"] == "fetch_refused" and words in literal["msg"]


def test_address_problem_public_and_non_public() -> None:
    import ipaddress

    assert address_problem(ipaddress.ip_address("93.184.216.34")) is None
    assert address_problem(ipaddress.ip_address("2606:4700:4700::1111")) is None
    assert address_problem(ipaddress.ip_address("198.18.0.1")) is not None  # benchmarking range
    assert address_problem(ipaddress.ip_address("::ffff:10.0.0.1")) == "a private address (IPv4-mapped)"


# http: redirects ------------------------------------------------------------------------------
def test_redirect_followed_within_allowed_targets(served: Served) -> None:
    fetched = Fetcher(LOOPBACK_OK).fetch(served.url("/redirect?to=/photo"), LOC)
    assert fetched == BODY
    assert [p for p, _ in served.seen.requests] == ["/redirect?to=/photo", "/photo"]


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("http://127.0.0.1:{port}/photo", "loopback"),
        ("http://internal.example/photo", "internal.example resolves to 192.168.7.7"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("file:///etc/passwd", "redirected to a file: URL"),
        ("data:image/png;base64,iVBORw0KGgo=", "redirected to a URL that is not http(s)"),
        ("mailto:someone@example.com", "redirected to a URL that is not http(s)"),
        ("javascript:alert(1)", "redirected to a URL that is not http(s)"),
    ],
)
def test_redirect_target_is_checked_again(served: Served, target: str, words: str) -> None:
    # The first hop is an allowed name (it resolves to the loopback server); its redirect is not.
    fetcher = Fetcher(
        Settings(fetch_allow=("start.example",)),
        resolver=resolver_for({"start.example": ["127.0.0.1"], "internal.example": ["192.168.7.7"]}),
    )
    to = urllib.parse.quote(target.format(port=served.port), safe="")
    item = refusal(fetcher, served.url(f"/redirect?to={to}", "start.example"))
    assert words in item["msg"]
    assert [p for p, _ in served.seen.requests] == [f"/redirect?to={to}"]


def test_too_many_redirects(served: Served) -> None:
    item = refusal(Fetcher(LOOPBACK_OK), served.url("/hop/0"))
    assert item["type"] == "fetch_too_many_redirects"
    assert str(MAX_REDIRECTS) in item["msg"]
    assert [p for p, _ in served.seen.requests] == [f"/hop/{i}" for i in range(MAX_REDIRECTS + 1)]


# http: size, time and status -------------------------------------------------------------------
def test_http_error_status(served: Served) -> None:
    item = refusal(Fetcher(LOOPBACK_OK), served.url("/missing.png"))
    assert item["type"] == "fetch_failed"
    assert "404" in item["msg"]


def test_content_length_over_cap_refused_before_reading(served: Served) -> None:
    t0 = time.monotonic()
    item = refusal(Fetcher(Settings(fetch_allow=("127.0.0.1",), fetch_max_bytes=5000)), served.url("/declared-big"))
    assert time.monotonic() - t0 < 1.5  # the body only starts after 2 s
    assert item["type"] == "fetch_too_large"
    assert str(BIG_TOTAL) in item["msg"]


def test_body_within_cap(served: Served) -> None:
    assert (
        Fetcher(Settings(fetch_allow=("127.0.0.1",), fetch_max_bytes=len(BODY))).fetch(served.url("/photo"), LOC)
        == BODY
    )
    item = refusal(Fetcher(Settings(fetch_allow=("127.0.0.1",), fetch_max_bytes=len(BODY) - 1)), served.url("/photo"))
    assert item["type"] == "fetch_too_large"


def test_chunked_body_past_cap_stops_early(served: Served) -> None:
    item = refusal(Fetcher(Settings(fetch_allow=("127.0.0.1",), fetch_max_bytes=200_000)), served.url("/chunked"))
    assert item["type"] == "fetch_too_large"
    assert served.seen.chunked_done.wait(5.0)
    # The server could only push what the socket buffers held before the client hung up.
    assert served.seen.chunked_sent < BIG_TOTAL // 4


def test_slow_server_times_out(served: Served) -> None:
    t0 = time.monotonic()
    item = refusal(Fetcher(Settings(fetch_allow=("127.0.0.1",), fetch_timeout_s=0.5)), served.url("/slow-headers"))
    assert item["type"] == "fetch_timeout"
    assert "timed out" in item["msg"] or "longer than" in item["msg"]
    assert time.monotonic() - t0 < 1.5


def test_trickling_body_hits_the_overall_deadline(served: Served) -> None:
    t0 = time.monotonic()
    item = refusal(Fetcher(Settings(fetch_allow=("127.0.0.1",), fetch_timeout_s=0.6)), served.url("/trickle"))
    assert item["type"] == "fetch_timeout"
    assert time.monotonic() - t0 < 2.0  # the whole body would take 100 s


def test_redirect_hops_share_one_deadline(served: Served) -> None:
    # Each hop answers within the timeout, but the chain as a whole does not.
    t0 = time.monotonic()
    item = refusal(Fetcher(Settings(fetch_allow=("127.0.0.1",), fetch_timeout_s=0.6)), served.url("/slowhop/0"))
    assert item["type"] == "fetch_timeout"
    assert time.monotonic() - t0 < 1.2
    assert len(served.seen.requests) < MAX_REDIRECTS
