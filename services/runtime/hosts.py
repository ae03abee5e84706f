"""Host names and address literals an operator may configure (SMTP routes, IMAP servers):
checked before anything connects, so that a name the resolver would refuse (a label over
63 characters, an empty label) is a clear error instead of a failure deep in a library;
and where such a host may lead (`ConnectPolicy`, below)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any

from .errors import InvalidArgument

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


# -- where an operator's host may lead (issue 16) ----------------------------------------
#
# An administrator's SMTP route or IMAP mailbox makes our servers connect to the host they
# name — and a connection test used to report what answered. Left open, that maps the
# network our services run in (the NATS server's version, a database's port, the cloud's
# metadata service). So a host an operator configures may lead only to global unicast
# addresses: every address its name resolves to is checked, and the connection is made to
# an address that was checked (never a second lookup, which a short-lived DNS answer could
# turn elsewhere). Loopback, private (RFC 1918, ULA), shared (100.64/10), link-local
# (169.254/16 with the metadata service, fe80::/10), unspecified, multicast, reserved and
# documentation ranges are refused unless the deployment allow-lists the host by name or
# its addresses by CIDR (SB_CONNECT_ALLOW). The platform's own relay (a setting) is not an
# operator's host and is not checked.

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class HostRefused(Exception):
    """The host may not be connected to (`step`: `dns` when its name does not resolve,
    `address` when an address is in a refused range, `connect` when no address answered);
    `message` says why without anything a peer sent."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step
        self.message = message


def _embedded_v4(ip: IP) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refused_range(ip: IP) -> str | None:
    """Why connecting to `ip` is refused (the range it is in), or None for a global
    unicast address."""
    inner = _embedded_v4(ip)
    if inner is not None:
        why = refused_range(inner)
        if why is not None:
            return why
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED, "shared (100.64.0.0/10)"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local"),
        (ip.is_reserved, "reserved"),
    )
    for hit, name in checks:
        if hit:
            return name
    return None if ip.is_global else "non-global"


@dataclass(frozen=True)
class ConnectPolicy:
    """Where operators' hosts may lead beyond the global Internet: host names and CIDR
    ranges allow-listed by the deployment."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> ConnectPolicy:
        """`SB_CONNECT_ALLOW`: host names, addresses and CIDR ranges, separated by commas
        or spaces. ValueError names an entry that is none of them."""
        hosts: set[str] = set()
        nets: list[Network] = []
        for entry in text.replace(",", " ").split():
            bare = entry.strip("[]")
            try:
                nets.append(ipaddress.ip_network(bare, strict=False))
                continue
            except ValueError:
                pass
            if not valid_host(entry):
                raise ValueError(f"{entry!r} is not a host name, address or CIDR range")
            hosts.add(_name(entry))
        return cls(frozenset(hosts), tuple(nets))

    def allows_name(self, host: str) -> bool:
        return _name(host) in self.hosts

    def why_refused(self, ip: IP) -> str | None:
        """The range `ip` is refused for, or None when it may be connected to."""
        why = refused_range(ip)
        if why is None or any(ip in net for net in self.networks):
            return None
        inner = _embedded_v4(ip)
        if inner is not None and any(inner in net for net in self.networks):
            return None
        return why

    def check_literal(self, host: str, field: str = "host") -> None:
        """At save time: an address written as the host, refused at once (InvalidArgument
        naming the field). Names are checked when they are resolved."""
        ip = _literal(host)
        if ip is None or self.allows_name(host):
            return
        why = self.why_refused(ip)
        if why is not None:
            raise InvalidArgument(
                f"{host} is a {why} address: connections to it are not allowed "
                "(the deployment may allow-list it in SB_CONNECT_ALLOW)",
                field=field,
            )

    async def check_host(self, host: str, field: str = "host") -> None:
        """When a host is saved or tried: an address literal or a name that resolves to a
        refused range is an InvalidArgument naming the field. A name that does not resolve
        now is let through (the connection will say so)."""
        self.check_literal(host, field)
        try:
            await self.resolve(host, 0)
        except HostRefused as exc:
            if exc.step == "address":
                raise InvalidArgument(exc.message, field=field) from None

    async def resolve(self, host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        """Every address `host` resolves to, each checked: (family, socket address).
        HostRefused (`dns` or `address`) otherwise."""
        loop = asyncio.get_running_loop()
        target = host.strip("[]")
        try:
            infos = await loop.getaddrinfo(target, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise HostRefused("dns", f"the name {host} does not resolve") from None
        found: list[tuple[int, tuple[Any, ...]]] = []
        for family, _, _, _, sockaddr in infos:
            if (family, sockaddr) not in found:
                found.append((family, sockaddr))
        if not found:
            raise HostRefused("dns", f"the name {host} does not resolve")
        if self.allows_name(host):
            return found
        for _, sockaddr in found:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            why = self.why_refused(ip)
            if why is not None:
                raise HostRefused(
                    "address",
                    f"{host} leads to a {why} address: connections to it are not allowed "
                    "(the deployment may allow-list it in SB_CONNECT_ALLOW)",
                )
        return found

    async def connect(self, host: str, port: int, timeout_s: float) -> socket.socket:
        """A TCP connection to a checked address of `host` (tried in the resolver's order):
        the connected, non-blocking socket. HostRefused (`dns`, `address`, `connect`)."""
        loop = asyncio.get_running_loop()
        addresses = await self.resolve(host, port)
        for family, sockaddr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, sockaddr), timeout_s)
                return sock
            except (OSError, TimeoutError):
                sock.close()
        raise HostRefused("connect", f"nothing answered at {host}:{port}")


def _name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None
