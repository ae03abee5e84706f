"""Client addresses against IP allow-lists (SEC-2), shared by accounts (at login) and the
gateway (on every request)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_of(text: str) -> IP | None:
    """An IP address from text (an IPv4-mapped IPv6 address as IPv4), or None."""
    try:
        ip = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_allowed(client: str, allowlist: Sequence[str]) -> bool:
    """An empty list allows every address; otherwise the client must be in one of its
    addresses or CIDR ranges. A client that is not an IP address (unknown) is allowed only
    by an empty list."""
    if not allowlist:
        return True
    ip = ip_of(client)
    if ip is None:
        return False
    for entry in allowlist:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
