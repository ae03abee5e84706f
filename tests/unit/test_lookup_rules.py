"""The customer-data lookup's rules (issue 21): the URL template (a fixed host, values
URL-encoded), the mapping by JSON pointers, the customer value, and where a lookup may
connect (the deployment's allow-list widened by the tenant's)."""

from __future__ import annotations

import ipaddress

import pytest

from services.runtime.errors import InvalidArgument
from services.runtime.hosts import ConnectPolicy, HostRefused
from services.runtime.priority_score import CUSTOMER_VALUE_MAX
from services.tickets import lookup_rules as rules
from services.tickets.lookup_rules import ContactKeys, LookupField, MissingValue


def test_values_are_url_encoded_so_they_cannot_change_the_url() -> None:
    keys = ContactKeys(
        email="taro+vip@example.jp",
        phone="03-1234 5678",
        custom={"plan": "a/b?c=d#e&f", "id": "会員"},
    )
    url = rules.expand("https://crm.example.com/c/{custom.plan}?e={email}&p={phone}", keys)
    assert url == (
        "https://crm.example.com/c/a%2Fb%3Fc%3Dd%23e%26f?e=taro%2Bvip%40example.jp&p=03-1234%205678"
    )
    assert rules.expand("https://crm.example.com/{custom.id}", keys).endswith("/%E4%BC%9A%E5%93%A1")


def test_a_value_the_contact_lacks_is_missing_by_name() -> None:
    with pytest.raises(MissingValue) as got:
        rules.expand("https://crm.example.com/?p={phone}", ContactKeys(email="a@b.jp"))
    assert got.value.name == "phone"
    with pytest.raises(MissingValue) as got:
        rules.expand("https://crm.example.com/?n={custom.no}", ContactKeys(custom={"no": "  "}))
    assert got.value.name == "custom.no"


@pytest.mark.parametrize(
    "template",
    [
        "http://{email}/x",  # the customer would choose the host
        "https://crm.example.com{email}",  # ... or its end
        "https://{custom.host}.example.com/x",
        "https://user@crm.example.com/{email}",  # credentials in the URL
        "ftp://crm.example.com/{email}",
        "file:///etc/passwd",
        "https://crm.example.com/?x={unknown}",
        "https://crm.example.com/?x={email",
        "https://crm.example.com/ space",
        "https://crm..example.com/{email}",
        "",
    ],
)
def test_templates_that_are_refused(template: str) -> None:
    with pytest.raises(InvalidArgument) as got:
        rules.check_template(template)
    assert got.value.field == "url_template"


@pytest.mark.parametrize(
    "template",
    [
        "https://crm.example.com/api?email={email}",
        "http://127.0.0.1:8080/c/{phone}",
        "https://[2001:db8::1]:8443/c?id={custom.member_id}",
        "https://crm.example.com",
    ],
)
def test_templates_that_are_accepted(template: str) -> None:
    rules.check_template(template)


def test_pointers_pick_fields_and_anything_absent_is_not_found() -> None:
    doc = {"customer": {"rank": "Gold", "a/b": 1, "m~n": 2, "orders": [{"id": 7}], "vip": True}}
    fields = [
        LookupField("/customer/rank", "ランク", "Rank"),
        LookupField("/customer/a~1b", "x", "x"),
        LookupField("/customer/m~0n", "y", "y"),
        LookupField("/customer/orders/0/id", "z", "z"),
        LookupField("/customer/orders/1/id", "w", "w"),
        LookupField("/customer/orders/01", "v", "v"),
        LookupField("/customer/vip", "u", "u"),
        LookupField("/customer/orders", "t", "t"),
        LookupField("/customer/rank/deeper", "s", "s"),
    ]
    got = [(m.value, m.found) for m in rules.map_fields(doc, fields)]
    assert got == [
        ("Gold", True),
        ("1", True),
        ("2", True),
        ("7", True),
        ("", False),
        ("", False),
        ("true", True),
        ('[{"id":7}]', True),
        ("", False),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1500, 1500),
        (1500.6, 1501),
        ("12,345", 12345),
        (" 42 ", 42),
        (-5, 0),
        (10**12, CUSTOMER_VALUE_MAX),
        (True, None),
        ("gold", None),
        (None, None),
        ({"a": 1}, None),
        (float("nan"), None),
    ],
)
def test_the_customer_value_is_a_whole_number_in_range(value: object, expected: int | None) -> None:
    assert rules.customer_value_of(value) == expected


def test_validation_names_the_field() -> None:
    good = {
        "url_template": "https://crm.example.com/?e={email}",
        "fields": [LookupField("/rank", "ランク", ""), LookupField("/ltv", "", "LTV", "number")],
        "value_pointer": "/ltv",
    }
    config = rules.validated(**good)  # type: ignore[arg-type]
    assert config.timeout_ms == rules.TIMEOUT_MS_DEFAULT
    assert config.fields[0] == LookupField("/rank", "ランク", "ランク", "text")  # a label in both
    for change, field in (
        ({"value_pointer": "/other"}, "value_pointer"),
        ({"timeout_ms": 10_001}, "timeout_ms"),
        ({"cache_ttl_s": -1}, "cache_ttl_s"),
        ({"header_name": "Host"}, "header_name"),
        ({"header_name": "X Key"}, "header_name"),
        ({"fields": [LookupField("rank", "a", "a")]}, "fields[0].pointer"),
        ({"fields": [LookupField("/a~2", "a", "a")]}, "fields[0].pointer"),
        ({"fields": [LookupField("/a", "", "")]}, "fields[0].label_ja"),
        ({"fields": [LookupField("/a", "a", "a", "money")]}, "fields[0].type"),
        (
            {"fields": [LookupField("/a", "a", "a"), LookupField("/a", "b", "b")]},
            "fields[1].pointer",
        ),
        ({"allow_hosts": ["bad host!"]}, "allow_hosts"),
    ):
        with pytest.raises(InvalidArgument) as got:
            rules.validated(**{**good, "value_pointer": "", **change})  # type: ignore[arg-type]
        assert got.value.field == field, change
    with pytest.raises(InvalidArgument):
        rules.check_secret("line\nbreak")


def _why(policy: ConnectPolicy, ip: str) -> str | None:
    return policy.why_refused(ipaddress.ip_address(ip))


def test_the_guard_refuses_internal_addresses_unless_the_tenant_or_deployment_allows() -> None:
    none = rules.policy_for(ConnectPolicy(), [])
    for ip, why in (
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared (100.64.0.0/10)"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
    ):
        assert _why(none, ip) == why, ip
    assert _why(none, "93.184.216.34") is None
    tenant = rules.policy_for(ConnectPolicy(), ["127.0.0.1", "10.0.0.0/8", "crm.internal"])
    assert _why(tenant, "127.0.0.1") is None and _why(tenant, "10.9.9.9") is None
    assert _why(tenant, "127.0.0.2") == "loopback"  # only what is listed
    assert tenant.tenant_hosts == {"crm.internal"} and not tenant.allows_name("crm.internal")
    both = rules.policy_for(ConnectPolicy.parse("192.168.0.0/16 erp.corp"), ["127.0.0.1"])
    assert _why(both, "192.168.1.1") is None and _why(both, "127.0.0.1") is None
    assert both.allows_name("erp.corp")  # the deployment's names: anything they lead to


def test_redirects_stay_on_the_same_scheme_host_and_port() -> None:
    assert rules.same_origin("http://a.example:80/x", "http://A.example:80/y?z")
    assert not rules.same_origin("http://a.example/x", "http://b.example/x")
    assert not rules.same_origin("http://a.example/x", "https://a.example/x")
    assert not rules.same_origin("http://a.example:81/x", "http://a.example:82/x")


def test_only_json_answers() -> None:
    assert rules.is_json_type("application/json; charset=utf-8")
    assert rules.is_json_type("application/vnd.api+json")
    assert not rules.is_json_type("text/html")
    assert not rules.is_json_type("")


async def test_a_tenant_can_never_open_the_metadata_service_or_non_hosts() -> None:
    tenant = rules.policy_for(ConnectPolicy(), ["169.254.0.0/16", "0.0.0.0/0", "::/0", "localhost"])
    assert _why(tenant, "169.254.169.254") == "link-local"
    assert _why(tenant, "fe80::1") == "link-local"
    assert _why(tenant, "0.0.0.0") == "unspecified"
    assert _why(tenant, "224.0.0.1") == "multicast"
    assert _why(tenant, "10.0.0.1") is None  # what the tenant may open, it did
    # a name the tenant listed leads to its addresses (loopback here) ...
    assert await tenant.resolve("localhost", 80)
    # ... and a name it did not list is checked address by address
    with pytest.raises(HostRefused):
        await rules.policy_for(ConnectPolicy(), ["127.0.0.2"]).resolve("localhost", 80)
    # the deployment alone may open link-local
    deployment = rules.policy_for(ConnectPolicy.parse("169.254.169.254"), [])
    assert _why(deployment, "169.254.169.254") is None
    for entry in ("169.254.169.254", "169.254.0.0/16", "fe80::/10", "224.0.0.1"):
        with pytest.raises(InvalidArgument) as got:
            rules.validated(url_template="https://crm.example.com/", allow_hosts=[entry])
        assert got.value.field == "allow_hosts" and "SB_CONNECT_ALLOW" in got.value.message
