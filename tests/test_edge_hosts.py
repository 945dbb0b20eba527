"""Host names the server answers to (issue 7, point 27).

Without ``--public-url`` the URLs handed out follow the ``Host`` header, so only hosts the server is configured
to answer to are accepted: a forged ``Host`` gets 400 and never reaches a ``response_url``.
"""

from __future__ import annotations

import httpx
import pytest
from server import running_server

from kinema.api.hosts import AllowedHosts, host_name
from kinema.settings import Settings

ENDPOINT = "/fal-ai/kling-video/v1/standard/image-to-video"


def _submit(server, photo_uri, host):
    return httpx.post(
        server.url + ENDPOINT,
        headers={**server.headers, "Host": host},
        timeout=30,
        json={"prompt": "a wave", "image_url": photo_uri},
    )


def test_default_hosts_are_the_bind_address_and_localhost(tmp_path, photo_uri):
    with running_server(tmp_path) as server:
        port = server.host_port.rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST.:{port}", f"[::1]:{port}"):
            r = _submit(server, photo_uri, host)
            assert r.status_code == 200, (host, r.text)
            assert r.json()["response_url"].startswith(f"http://{host}/")
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", f"10.1.2.3:{port}"):
            for method, path in (("POST", ENDPOINT), ("GET", "/health"), ("GET", "/openapi.json")):
                r = httpx.request(
                    method,
                    server.url + path,
                    headers={**server.headers, "Host": host},
                    json={"prompt": "x", "image_url": photo_uri} if method == "POST" else None,
                )
                assert r.status_code == 400, (host, path, r.status_code)
                assert r.json()["error_type"] == "host_not_allowed"
                assert r.headers["x-fal-error-type"] == "host_not_allowed"
                assert "evil" not in r.text or "KINEMA_ALLOWED_HOSTS" in r.text
        # Nothing was queued under a forged name.
        listed = httpx.get(server.url + "/requests", headers=server.headers).json()["requests"]
        assert all("evil" not in item["response_url"] for item in listed) and len(listed) == 4
        assert "allowed_hosts=127.0.0.1,::1,localhost,localhost.localdomain" in server.log_text()


def test_configured_hosts(tmp_path, photo_uri):
    env = {"KINEMA_ALLOWED_HOSTS": "kinema.test, 127.0.0.1"}
    with running_server(tmp_path, env=env) as server:
        r = _submit(server, photo_uri, "kinema.test:8443")
        assert r.status_code == 200 and r.json()["response_url"].startswith("http://kinema.test:8443/")
        assert _submit(server, photo_uri, "localhost").status_code == 400  # not in the list any more
        assert _submit(server, photo_uri, "other.test").status_code == 400


def test_star_allows_any_host_and_public_url_is_always_allowed(tmp_path, photo_uri):
    with running_server(tmp_path, env={"KINEMA_ALLOWED_HOSTS": "*"}) as server:
        assert _submit(server, photo_uri, "anything.example").status_code == 200
    with running_server(tmp_path / "b", env={"KINEMA_PUBLIC_URL": "https://video.example.org"}) as server:
        r = _submit(server, photo_uri, "video.example.org")
        assert r.status_code == 200 and r.json()["response_url"].startswith("https://video.example.org/")
        assert _submit(server, photo_uri, "evil.example").status_code == 400


@pytest.mark.parametrize(
    ("header", "name"), [("Example.COM:80", "example.com"), ("[::1]:8000", "::1"), ("::1", "::1"), ("host.", "host")]
)
def test_host_name(header, name):
    assert host_name(header) == name


def test_wildcard_bind_allows_machine_names_and_ip_literals_only():
    import socket

    allowed = AllowedHosts(Settings(host="0.0.0.0"))
    assert allowed.allows("192.168.1.20:8000") and allowed.allows("[fe80::1]:8000")
    assert allowed.allows(socket.gethostname()) and allowed.allows("localhost:8000")
    assert not allowed.allows("rebind.attacker.example")
    specific = AllowedHosts(Settings(host="192.168.1.20"))
    assert specific.allows("192.168.1.20:8000") and not specific.allows("192.168.1.21:8000")
