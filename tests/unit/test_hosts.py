import ipaddress

import pytest

from services.runtime.errors import InvalidArgument
from services.runtime.hosts import ConnectPolicy, refused_range, valid_host


def test_names_and_address_literals_are_accepted() -> None:
    for host in (
        "smtp.example.com",
        "mail-1.example.jp.",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "[2001:db8::25]",
        "[192.0.2.1]",
        "a" * 63 + ".example",
    ):
        assert valid_host(host), host


def test_what_a_resolver_would_refuse_is_refused() -> None:
    for host in (
        "",
        "0" * 254,
        "a" * 64 + ".example",
        "a..example",
        ".example",
        "-a.example",
        "a-.example",
        "a b.example",
        "a/b",
        "[not-an-address]",
        "ex\x00ample",
        "例え.jp",
    ):
        assert not valid_host(host), host


# -- where a host may lead (issue 16) -----------------------------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "shared (100.64.0.0/10)"),
        ("169.254.169.254", "link-local"),  # the cloud's metadata service
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),
        ("192.0.2.10", "private"),  # documentation
        ("fec0::1", "site-local"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
    ],
)
def test_internal_ranges_are_refused(address: str, why: str) -> None:
    assert refused_range(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", ["8.8.8.8", "203.0.114.1", "2001:4860:4860::8888"])
def test_global_addresses_are_allowed(address: str) -> None:
    assert refused_range(ipaddress.ip_address(address)) is None
    assert ConnectPolicy().why_refused(ipaddress.ip_address(address)) is None


def test_the_allow_list_takes_names_addresses_and_ranges() -> None:
    policy = ConnectPolicy.parse("127.0.0.1, 10.20.0.0/16 [fd00::1] mail.internal.")
    ip = ipaddress.ip_address
    assert policy.why_refused(ip("127.0.0.1")) is None
    assert policy.why_refused(ip("127.0.0.2")) == "loopback"
    assert policy.why_refused(ip("10.20.3.4")) is None
    assert policy.why_refused(ip("10.21.3.4")) == "private"
    assert policy.why_refused(ip("fd00::1")) is None
    assert policy.why_refused(ip("::ffff:127.0.0.1")) is None
    assert policy.allows_name("MAIL.internal") and not policy.allows_name("other.internal")
    with pytest.raises(ValueError, match="host!"):
        ConnectPolicy.parse("ok.example, bad host!")


def test_an_address_written_as_the_host_is_refused_when_saved() -> None:
    for host in ("127.0.0.1", "[::1]", "10.0.0.5", "[169.254.169.254]"):
        with pytest.raises(InvalidArgument) as err:
            ConnectPolicy().check_literal(host, "host")
        assert err.value.field == "host"
    ConnectPolicy().check_literal("smtp.example.com")  # names: checked when resolved
    ConnectPolicy.parse("127.0.0.1").check_literal("127.0.0.1")
