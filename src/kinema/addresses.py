"""Which IP addresses kinema will connect to on a user's behalf (input URLs and webhooks).

Only public unicast addresses: loopback, private, link-local, multicast, unspecified,
carrier-grade NAT, reserved and other non-global ranges are refused, also in their
IPv4-mapped IPv6 form. Python counts 6to4 (``2002::/16``, which relays to any IPv4 address
embedded in it, private ones included) and the deprecated site-local ``fec0::/10`` as global;
kinema refuses both.
"""

from __future__ import annotations

import ipaddress

__all__ = ["address_problem"]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_6TO4 = ipaddress.ip_network("2002::/16")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_problem(ip: _Address) -> str | None:
    """Why kinema will not connect to ``ip`` (e.g. ``"a loopback address"``), or ``None`` if public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        inner = address_problem(ip.ipv4_mapped)
        return None if inner is None else f"{inner} (IPv4-mapped)"
    checks = [
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a carrier-grade NAT address"),
        (isinstance(ip, ipaddress.IPv6Address) and ip in _6TO4, "a 6to4 address"),
        (isinstance(ip, ipaddress.IPv6Address) and ip in _SITE_LOCAL, "a site-local address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a non-public address"),
    ]
    for hit, name in checks:
        if hit:
            return name
    return None
