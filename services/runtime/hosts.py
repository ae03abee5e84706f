"""Host names and address literals an operator may configure (SMTP routes, IMAP servers):
checked before anything connects, so that a name the resolver would refuse (a label over
63 characters, an empty label) is a clear error instead of a failure deep in a library."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def valid_host(host: str) -> bool:
    """A DNS name (letters, digits, hyphens; labels of 1–63; at most 253 in all), an IPv4
    address, or an address in brackets (`[2001:db8::1]`, `[192.0.2.1]`)."""
    if not host or len(host) > 253:
        return False
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.ip_address(host[1:-1])
        except ValueError:
            return False
        return True
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    return all(_LABEL.match(label) for label in name.split("."))
