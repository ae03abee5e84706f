"""Contacts' rules (services/tickets/contact_rules.py): what an operator may type into a
contact, the key a sender is filed under, what a merge keeps, the list's search pattern and
the timeline cursor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.runtime.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.tickets import contact_rules as rules
from services.tickets.contact_rules import ContactEdit, EntryKind, TimelineCursor


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Taro.Yamada@Example.COM", "taro.yamada@example.com"),
        ("  a+tag@sub.example.co.jp ", "a+tag@sub.example.co.jp"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("user@xn--r8jz45g.jp", "user@xn--r8jz45g.jp"),
        ("山田@例え.jp", "山田@例え.jp"),
    ],
)
def test_a_mail_address_is_stored_lower_case(typed: str, stored: str) -> None:
    assert rules.clean_address(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "plainaddress",
        "@example.com",
        "user@",
        "user@localhost",
        "user@example",
        "user@@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "user@-example.com",
        "user@example-.com",
        "user@exa_mple.com",
        "user@example..com",
        "user@192.168.0.1",
        "Taro <taro@example.com>",
        "<taro@example.com>",
        '"taro"@example.com',
        "taro(comment)@example.com",
        "a@example.com,b@example.com",
        "a@example.com b@example.com",
        "taro@example.com\r\nBcc: victim@example.com",
        "taro@example.com\n",
        "taro\x00@example.com",
        "ta\tro@example.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 64 + ".com",
        "a@" + ".".join(["abcdefgh"] * 40) + ".com",
    ],
)
def test_anything_but_a_plain_mail_address_is_refused(typed: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        rules.clean_address(typed)
    assert err.value.field == "addresses"


def test_addresses_lose_duplicates_and_are_limited() -> None:
    assert rules.clean_addresses(["A@example.com", "a@example.com", "b@example.com"]) == [
        "a@example.com",
        "b@example.com",
    ]
    many = [f"u{i}@example.com" for i in range(rules.ADDRESSES_MAX + 1)]
    with pytest.raises(InvalidArgument):
        rules.clean_addresses(many)
    assert len(rules.clean_addresses(many[:-1])) == rules.ADDRESSES_MAX


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+81 3-1234-5678", "+81 3-1234-5678"),
        ("(03) 1234  5678", "(03) 1234 5678"),
        ("０９０－１２３４－５６７８", "090-1234-5678"),
        ("1" * 30, "1" * 30),
    ],
)
def test_a_phone_number_is_digits_spaces_and_signs(typed: str, stored: str) -> None:
    assert rules.clean_phone(typed) == stored


@pytest.mark.parametrize(
    "typed",
    ["", "   ", "1" * 31, "090-1234-5678 ext. 5", "+-()", "090\n1234", "0901234\x00", "1;2"],
)
def test_a_phone_number_with_anything_else_is_refused(typed: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        rules.clean_phone(typed)
    assert err.value.field == "phones"


def test_phones_lose_duplicates_and_are_limited() -> None:
    assert rules.clean_phones(["03 1234", "03  1234", "04"]) == ["03 1234", "04"]
    with pytest.raises(InvalidArgument):
        rules.clean_phones([str(1000 + i) for i in range(rules.PHONES_MAX + 1)])


def test_custom_fields_are_limited_in_number_and_size() -> None:
    fifty = {f"key {i}": "v" for i in range(50)}
    assert rules.clean_custom(fifty) == fifty
    with pytest.raises(InvalidArgument) as err:
        rules.clean_custom({**fifty, "one more": "v"})
    assert err.value.field == "custom"
    assert rules.clean_custom({"k" * 100: "v" * 2000}) == {"k" * 100: "v" * 2000}
    for bad in (
        {"k" * 101: "v"},
        {"k": "v" * 2001},
        {"": "v"},
        {"   ": "v"},
        {"a\nb": "v"},
        {"a\x00": "v"},
        {"k": "a\x00b"},
        {"k": "v", " k ": "w"},  # the same key once trimmed
    ):
        with pytest.raises(InvalidArgument):
            rules.clean_custom(bad)


def test_custom_keys_are_trimmed_and_values_may_have_lines() -> None:
    assert rules.clean_custom({"  会員  番号 ": " A-1\r\nB-2 "}) == {"会員 番号": "A-1\nB-2"}


def test_name_company_and_memo_limits() -> None:
    assert rules.clean_line("  山田   太郎 ", "name") == "山田 太郎"
    assert rules.clean_line("", "name") == ""
    assert rules.clean_line("x" * 200, "company") == "x" * 200
    with pytest.raises(InvalidArgument) as err:
        rules.clean_line("x" * 201, "company")
    assert err.value.field == "company"
    with pytest.raises(InvalidArgument):
        rules.clean_line("a\x00b", "name")
    with pytest.raises(InvalidArgument):
        rules.clean_line("a\x1bb", "name")
    assert rules.clean_memo("line 1\r\nline 2\n") == "line 1\nline 2"
    assert rules.clean_memo("") == ""
    assert len(rules.clean_memo("m" * 20_000)) == 20_000
    with pytest.raises(InvalidArgument) as err:
        rules.clean_memo("m" * 20_001)
    assert err.value.field == "memo"


def test_an_edit_is_validated_as_a_whole_and_names_only_what_changes() -> None:
    edit = ContactEdit.validated(
        name=" Hanako ", addresses=["B@example.com"], phones=None, custom={"plan": "gold"}
    )
    assert edit == ContactEdit(name="Hanako", addresses=["b@example.com"], custom={"plan": "gold"})
    row = {"name": "Hanako", "company": "", "memo": "", "phones": [], "custom": {}}
    assert edit.changes(row, ["b@example.com"]) == {"custom": {"plan": "gold"}}
    assert edit.changes(row, ["a@example.com"]) == {
        "custom": {"plan": "gold"},
        "addresses": ["b@example.com"],
    }
    assert ContactEdit.validated().changes(row, []) == {}
    with pytest.raises(InvalidArgument):
        ContactEdit.validated(name="ok", memo="m" * 20_001)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("Customer@Example.COM", "customer@example.com"),
        (" a@b ", "a@b"),
        ("", None),
        ("   ", None),
        ("no-at-sign", None),
        ("a b@example.com", None),
        ("a@example.com\r\n", "a@example.com"),
        ("a\r\nb@example.com", None),
        ("x" * 300 + "@example.com", None),
    ],
)
def test_the_key_a_sender_is_filed_under(address: str, key: str | None) -> None:
    assert rules.sender_key(address) == key


def test_a_sender_name_becomes_one_line_of_at_most_200_characters() -> None:
    assert rules.sender_name(" 山田\r\n 太郎 ") == "山田 太郎"
    assert len(rules.sender_name("n" * 500)) == 200


def _contact(**values: object) -> dict[str, object]:
    base: dict[str, object] = {"name": "", "company": "", "memo": "", "phones": [], "custom": {}}
    return {**base, **values}


def test_a_merge_keeps_the_targets_values_and_adds_the_sources() -> None:
    target = _contact(name="Taro", phones=["03 1111"], custom={"plan": "gold", "a": "1"})
    source = _contact(
        name="T. Yamada",
        company="ACME",
        memo="prefers phone",
        phones=["03 1111", "090 2222"],
        custom={"plan": "silver", "b": "2"},
    )
    merged = rules.merge(target, source)
    assert merged.name == "Taro"
    assert merged.company == "ACME"
    assert merged.memo == "prefers phone"
    assert merged.phones == ["03 1111", "090 2222"]
    assert merged.custom == {"plan": "gold", "a": "1", "b": "2"}


def test_a_merge_that_would_break_a_limit_is_refused() -> None:
    target = _contact(custom={f"t{i}": "v" for i in range(30)})
    source = _contact(custom={f"s{i}": "v" for i in range(21)})
    with pytest.raises(FailedPrecondition):
        rules.merge(target, source)
    phones = _contact(phones=[str(100 + i) for i in range(15)])
    more = _contact(phones=[str(200 + i) for i in range(6)])
    with pytest.raises(FailedPrecondition):
        rules.merge(phones, more)
    with pytest.raises(FailedPrecondition):
        rules.check_merged_addresses(60, 41)
    rules.check_merged_addresses(60, 40)


def test_the_search_pattern_is_normalised_and_escaped() -> None:
    assert rules.search("") is None
    assert rules.search("   ") is None
    s = rules.search("ＡＢＣ  商事")
    assert s is not None and s.text == "%abc 商事%" and s.digits is None
    s = rules.search("100%_\\")
    assert s is not None and s.text == "%100\\%\\_\\\\%"
    s = rules.search("090-1234")
    assert s is not None and s.digits == "%0901234%"
    s = rules.search("12")
    assert s is not None and s.digits is None  # too short to be worth a phone search
    with pytest.raises(InvalidArgument):
        rules.search("q" * 201)


def test_a_caller_who_may_not_see_addresses_searches_names_and_companies_only() -> None:
    s = rules.search("090-1234", addresses=False)
    assert s is not None and s.digits is None and s.addresses is False
    assert s.text == "%090-1234%"  # compared with name and company, nothing else
    s = rules.search("Taro@Example", addresses=False)
    assert s is not None and not s.addresses and s.text == "%taro@example%"
    s = rules.search("090-1234")
    assert s is not None and s.addresses and s.digits == "%0901234%"


def test_a_masked_caller_may_send_masked_addresses_back_but_not_change_or_guess_them() -> None:
    current = ["taro@example.jp"]
    rules.masked_edit("addresses", None, current)
    rules.masked_edit("addresses", ["t***@e***.jp"], current)  # the form as shown
    rules.masked_edit("phones", [" ***-****-**78 "], ["090-1234-5678"])
    for field, sent, now in (
        ("addresses", ["t***@e***.jp", "hanako@example.jp"], current),
        ("addresses", [], current),
        ("addresses", ["taro@example.jp"], current),  # a right guess is no different
        ("phones", ["090-1234-5678"], ["090-1234-5678"]),
        ("addresses", ["x***@e***.jp"], current),
        ("phones", ["090-1234-5678", "03-0000-0000"], ["090-1234-5678"]),
    ):
        with pytest.raises(PermissionDenied) as refused:
            rules.masked_edit(field, sent, now)
        assert refused.value.field == field


def test_a_timeline_cursor_round_trips_and_orders_newest_first() -> None:
    at = datetime(2021, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    ident = uuid.uuid4()
    cursor = TimelineCursor(at, EntryKind.MESSAGE, ident)
    assert TimelineCursor.decode(cursor.encode()) == cursor
    assert cursor.before(at - timedelta(seconds=1), EntryKind.COMMENT, ident)
    assert cursor.before(at, EntryKind.TICKET_OPENED, ident)
    assert not cursor.before(at, EntryKind.COMMENT, ident)
    assert not cursor.before(at, EntryKind.MESSAGE, ident)


@pytest.mark.parametrize("value", ["", "garbage", "dGV4dA", "dDF8eHx5fHo"])
def test_a_cursor_this_api_did_not_give_out_is_refused(value: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        TimelineCursor.decode(value)
    assert err.value.field == "cursor"
