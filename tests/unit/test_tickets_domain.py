"""The ticket model's pure rules: threading, the status machine, field edits, elapsed-time
thresholds, bigram search and the list query's cursor."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.runtime.errors import InvalidArgument
from services.tickets import domain, query, search
from services.tickets import thread_rules as tr
from services.tickets.domain import FieldEdit, Status
from services.tickets.records import Ticket

KEY = tr.thread_key("a test key of enough length")
TENANT = "0191f000-0000-7000-8000-00000000de00"
TICKET = "0191f000-0000-7000-8000-0000000000aa"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


# -- threading --------------------------------------------------------------------------


def test_a_minted_message_id_names_its_ticket_for_its_tenant_only() -> None:
    mid = tr.mint_message_id(KEY, TENANT, TICKET, b"\x01\x02\x03\x04\x05", "Support.Example.COM")
    assert mid.endswith("@support.example.com")
    assert tr.looks_signed(mid) and tr.looks_signed(f"<{mid}>")
    assert tr.verified_ticket(KEY, TENANT, f"<{mid}>") == uuid.UUID(TICKET)
    other_tenant = "0191f000-0000-7000-8000-00000000de01"
    assert tr.verified_ticket(KEY, other_tenant, mid) is None
    assert tr.verified_ticket(tr.thread_key("another key, also long"), TENANT, mid) is None
    assert tr.verified_ticket(None, TENANT, mid) is None


def test_every_minted_id_is_different() -> None:
    a = tr.mint_message_id(KEY, TENANT, TICKET, b"\x00" * 5, "x.example")
    b = tr.mint_message_id(KEY, TENANT, TICKET, b"\x00\x00\x00\x00\x01", "x.example")
    assert a != b


def test_a_forged_reference_to_another_ticket_is_refused() -> None:
    mid = tr.mint_message_id(KEY, TENANT, TICKET, b"\x01\x02\x03\x04\x05", "x.example")
    other = uuid.UUID("0191f000-0000-7000-8000-0000000000bb").hex
    forged = mid.replace(uuid.UUID(TICKET).hex, other)
    assert tr.looks_signed(forged)
    assert tr.verified_ticket(KEY, TENANT, forged) is None
    tampered = mid[:-20] + ("a" if mid[-20] != "a" else "b") + mid[-19:]
    assert tr.verified_ticket(KEY, TENANT, tampered) is None


@pytest.mark.parametrize("domain_name", ["", "bad domain", "x..y", "a\r\nb.example", "-x.example"])
def test_minting_refuses_a_bad_domain(domain_name: str) -> None:
    with pytest.raises(InvalidArgument):
        tr.mint_message_id(KEY, TENANT, TICKET, b"\x00" * 5, domain_name)


def test_references_are_most_recent_first_without_duplicates() -> None:
    refs = tr.references("<c@x>", ["<a@x>", "<b@x>", "<c@x>", "  "])
    assert refs == ["c@x", "b@x", "a@x"]
    assert len(tr.references("", [f"<{i}@x>" for i in range(200)])) == tr.MAX_REFERENCES


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("Re: [#42] Order", 42),
        ("Re: [#1] first [#7] second", 7),
        ("Order #42", None),
        ("[# 42]", None),
        ("Re: 【お問い合わせ】[#1234]", 1234),
    ],
)
def test_subject_tag(subject: str, number: int | None) -> None:
    assert tr.subject_tag(subject) == number
    if number is not None:
        assert tr.subject_tag(f"Re: {tr.tag_for(number)}") == number


def test_every_customer_reply_lands_in_open() -> None:
    for status in (Status.PENDING, Status.RESOLVED, Status.NO_ACTION, Status.TRASH):
        assert tr.join_existing(status, None, NOW, 0, mail_is_junk=False) is tr.Join.REOPEN
    assert tr.join_existing(Status.OPEN, None, NOW, 0, mail_is_junk=False) is tr.Join.APPEND
    # junk changes no status
    assert tr.join_existing(Status.RESOLVED, None, NOW, 0, mail_is_junk=True) is tr.Join.APPEND


def test_a_ticket_closed_too_long_gives_way_to_a_new_one() -> None:
    closed = NOW - timedelta(days=8)
    assert tr.join_existing(Status.RESOLVED, closed, NOW, 7, mail_is_junk=False) is tr.Join.NEW
    assert tr.join_existing(Status.RESOLVED, closed, NOW, 9, mail_is_junk=False) is tr.Join.REOPEN
    assert tr.join_existing(Status.RESOLVED, closed, NOW, 0, mail_is_junk=False) is tr.Join.REOPEN
    # pending is not closed: it reopens whatever its age
    assert tr.join_existing(Status.PENDING, closed, NOW, 7, mail_is_junk=False) is tr.Join.REOPEN


# -- status machine and fields ------------------------------------------------------------


def _row(**kw: Any) -> Ticket:
    ident = uuid.UUID(int=1)
    base = Ticket(
        id=ident,
        tenant_id=ident,
        subject="s",
        status="open",
        inbox_id=ident,
        inbox_name="Support",
        from_name="",
        from_address="",
        received_at=NOW,
        assignee_id=None,
        assignee_name=None,
        created_at=NOW,
        updated_at=NOW,
        number=1,
        contact_id=None,
        labels=[],
        category="",
        priority="normal",
        flags=[],
        status_before_trash=None,
        closed_at=None,
        merged_into=None,
        last_message_at=None,
        message_count=0,
        draft_count=0,
        awaiting_approval=False,
        lock_fence=None,
        lock_holder_id=None,
        lock_holder_name=None,
        lock_acquired_at=None,
        lock_expires_at=None,
        sla_due_at=None,
    )
    return replace(base, **kw)


def test_trash_remembers_the_status_to_restore() -> None:
    applied = domain.apply_edit(_row(status="pending"), FieldEdit(status=Status.TRASH))
    assert applied.values == {"status": "trash", "status_before_trash": "pending"}
    assert applied.changes == (domain.Change("status", "pending", "trash"),)
    restored = _row(status="trash", status_before_trash="pending")
    assert domain.restore_status(restored) is Status.PENDING
    assert domain.restore_status(_row(status="trash")) is Status.OPEN


def test_an_edit_to_the_same_values_changes_nothing() -> None:
    row = _row(labels=["vip"], category="billing", priority="high")
    edit = FieldEdit(
        status=Status.OPEN,
        priority=domain.Priority.HIGH,
        category="billing",
        add_labels=("vip",),
    ).validated()
    assert domain.apply_edit(row, edit).changes == ()


def test_labels_and_flags_add_and_remove() -> None:
    row = _row(labels=["a", "b"], flags=["x"])
    edit = FieldEdit(
        add_labels=(" 請求  ", "a"), remove_labels=("b",), add_flags=("y",), remove_flags=("x",)
    ).validated()
    applied = domain.apply_edit(row, edit)
    assert applied.values == {"labels": ["a", "請求"], "flags": ["y"]}


@pytest.mark.parametrize(
    "edit",
    [
        FieldEdit(add_labels=("",)),
        FieldEdit(add_labels=("x" * 51,)),
        FieldEdit(add_labels=("a\x07b",)),
        FieldEdit(category="\x00bad"),
    ],
)
def test_bad_labels_are_refused(edit: FieldEdit) -> None:
    with pytest.raises(InvalidArgument):
        edit.validated()


def test_a_ticket_has_at_most_twenty_labels() -> None:
    row = _row(labels=[f"l{i}" for i in range(20)])
    with pytest.raises(InvalidArgument):
        domain.apply_edit(row, FieldEdit(add_labels=("one more",)).validated())


def test_elapsed_levels() -> None:
    th = domain.validate_thresholds(
        [domain.Threshold(30, "#ffcc00"), domain.Threshold(60, "#ff0000")]
    )
    assert domain.elapsed_level(th, 29 * 60) == (0, "")
    assert domain.elapsed_level(th, 30 * 60) == (1, "#ffcc00")
    assert domain.elapsed_level(th, 5 * 3600) == (2, "#ff0000")
    assert domain.elapsed_level([], 10**9) == (0, "")


@pytest.mark.parametrize(
    "items",
    [
        [domain.Threshold(10, "#000000")] * 6,
        [domain.Threshold(60, "#000000"), domain.Threshold(30, "#111111")],
        [domain.Threshold(0, "#000000")],
        [domain.Threshold(10, "red")],
    ],
)
def test_bad_thresholds_are_refused(items: list[domain.Threshold]) -> None:
    with pytest.raises(InvalidArgument):
        domain.validate_thresholds(items)


def test_phone_memo_validation() -> None:
    ok = domain.PhoneMemoInput.validated(
        body=" 折り返し希望 ",
        direction="",
        caller_name="山田",
        phone="+81 3-1234-5678",
        duration_s=60,
        occurred_at=NOW,
        now=NOW,
    )
    assert ok.body == "折り返し希望" and ok.direction == "inbound"
    bad = {
        "body": "",
        "direction": "sideways",
        "phone": "call me",
        "duration_s": -1,
        "occurred_at": NOW + timedelta(hours=1),
    }
    for field, value in bad.items():
        args = {
            "body": "x",
            "direction": "inbound",
            "caller_name": "",
            "phone": "",
            "duration_s": 0,
            "occurred_at": NOW,
            field: value,
        }
        with pytest.raises(InvalidArgument):
            domain.PhoneMemoInput.validated(**args, now=NOW)  # type: ignore[arg-type]


# -- search -----------------------------------------------------------------------------


def _matches(text: str, keyword: str) -> bool:
    """What the SQL does: all grams of every term present, and the term really in the text."""
    doc, grams = search.document("", text)
    have = set(grams)
    return all(
        set(search.term_grams(t)) <= have and t in doc for t in search.keyword_terms(keyword)
    )


def test_japanese_words_are_found_inside_text_without_spaces() -> None:
    text = "先日注文した商品の請求書が届いておりません。至急ご確認ください。"
    assert _matches(text, "請求書")
    assert _matches(text, "確認")
    assert _matches(text, "請求書 確認")
    assert not _matches(text, "領収書")
    # all the bigrams of 書請 are absent, and 請書 is in no order in the text
    assert not _matches(text, "請書")


def test_width_and_case_are_folded() -> None:
    assert _matches("ＩＰＨＯＮＥ　１５の件", "iphone 15")
    assert _matches("ｶﾀｶﾅ のお問い合わせ", "カタカナ")
    assert _matches("Invoice overdue", "INVOICE")


def test_one_character_keywords_work() -> None:
    assert _matches("猫の件", "猫")
    assert not _matches("犬の件", "猫")


def test_like_pattern_escapes_wildcards() -> None:
    assert search.like_pattern("100%_a\\b") == "%100\\%\\_a\\\\b%"


def test_keyword_is_bounded() -> None:
    assert len("".join(search.keyword_terms("あ" * 10_000))) == search.KEYWORD_MAX


# -- list query -------------------------------------------------------------------------


def test_list_cursor_round_trips_and_is_bound_to_its_sort() -> None:
    ident = uuid.uuid4()
    c = query.ListCursor(query.Sort.RECEIVED_AT, False, NOW, ident)
    back = query.ListCursor.decode(c.encode(), query.Sort.RECEIVED_AT, False)
    assert back == c
    with pytest.raises(InvalidArgument):
        query.ListCursor.decode(c.encode(), query.Sort.SUBJECT, False)
    with pytest.raises(InvalidArgument):
        query.ListCursor.decode(c.encode(), query.Sort.RECEIVED_AT, True)
    for junk in ("nope", "", "W10", "WyJzdWJqZWN0IiwgZmFsc2UsIDEsICJ4Il0"):
        with pytest.raises(InvalidArgument):
            query.ListCursor.decode(junk, query.Sort.SUBJECT, False)


def test_the_list_query_is_scoped_by_tenant_and_never_interpolates_values() -> None:
    q = query.TicketQuery(
        keyword="x'; DROP TABLE tickets; --",
        label="a'b",
        statuses=(Status.OPEN,),
        sort=query.Sort.PRIORITY,
        ascending=True,
    )
    sql, args = query.build_list_query(TENANT, q, 10)
    assert "t.tenant_id = $1" in sql and "DROP" not in sql and "a'b" not in sql
    assert args[0] == uuid.UUID(TENANT)
    assert "ASC" in sql


def test_a_masked_callers_keyword_is_compared_with_the_text_without_addresses() -> None:
    seeing = query.build_list_query(TENANT, query.TicketQuery(keyword="taro@ex"), 10)[0]
    masked = query.build_list_query(
        TENANT, query.TicketQuery(keyword="taro@ex", addresses=False), 10
    )[0]
    assert "m.search_text LIKE" in seeing and "search_masked" not in seeing
    assert "m.search_masked LIKE" in masked and "m.search_text" not in masked


def test_a_masked_callers_keyword_paths_and_probe_read_the_text_without_addresses() -> None:
    holding = {"taro@ex": None}
    masked = query.TicketQuery(keyword="taro@ex", addresses=False)
    common = query.build_list_query(TENANT, masked, 10, None, holding)[0]
    assert "m.search_masked LIKE" in common and "search_text" not in common
    assert "LIMIT 1)" in common  # checked ticket by ticket, never joined in bulk
    probe = query.build_term_probe(TENANT, "taro@ex", False)[0]
    assert "search_masked LIKE" in probe and "search_text" not in probe
    rare = query.build_list_query(TENANT, masked, 10, None, {"taro@ex": [uuid.UUID(int=1)]})
    assert "t.id = ANY($3::uuid[])" in rare[0] and rare[1][2] == [uuid.UUID(int=1)]
    assert "messages" not in rare[0]


def test_one_inbox_or_status_is_an_equality_so_an_index_reads_it_in_order() -> None:
    inbox = uuid.uuid4()
    one = query.TicketQuery(inbox_ids=(inbox,), statuses=(Status.OPEN,))
    sql, args = query.build_list_query(TENANT, one, 10)
    assert "t.status = $3" in sql and "t.inbox_id = $4" in sql and args[2:] == ["open", inbox]
    two = query.TicketQuery(inbox_ids=(inbox, uuid.uuid4()), statuses=(Status.OPEN, Status.PENDING))
    sql = query.build_list_query(TENANT, two, 10)[0]
    assert "t.status = ANY(" in sql and "t.inbox_id = ANY(" in sql


@pytest.mark.parametrize("sort", [query.Sort.SUBJECT, query.Sort.CUSTOMER])
def test_sorting_by_customer_data_leaves_addresses_out_for_a_masked_caller(
    sort: query.Sort,
) -> None:
    masked = query.build_list_query(TENANT, query.TicketQuery(sort=sort, addresses=False), 10)
    assert "from_address" not in masked[0]
    assert "ORDER BY sb_unaddressed(" in masked[0]
    seeing = query.build_list_query(TENANT, query.TicketQuery(sort=sort), 10)[0]
    assert "sb_unaddressed" not in seeing


@pytest.mark.parametrize("sort", [query.Sort.SUBJECT, query.Sort.CUSTOMER])
def test_a_cursor_of_a_customer_data_sort_carries_no_value_and_a_guess_is_ignored(
    sort: query.Sort,
) -> None:
    row = _row(subject="Re: taro.yamada@customer.example", from_address="taro@customer.example")
    value = query.sort_value(row, sort)
    assert value is None
    cursor = query.ListCursor(sort, False, value, uuid.uuid4())
    raw = base64.urlsafe_b64decode(cursor.encode() + "==").decode()
    assert "taro" not in raw
    # a made-up cursor with a guessed value: the guess is dropped, never compared
    guess = base64.urlsafe_b64encode(
        json.dumps([sort.value, False, "taro@c", str(cursor.id)]).encode()
    ).decode()
    decoded = query.ListCursor.decode(guess, sort, False)
    assert decoded.value is None
    sql, args = query.build_list_query(
        TENANT, query.TicketQuery(sort=sort, after=decoded, addresses=False), 10, [str(TENANT)]
    )
    assert "taro@c" not in args
    assert "(SELECT sb_unaddressed(" in sql and "FROM tickets t WHERE t.tenant_id = $1" in sql


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 22, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=9))),
        datetime(2026, 3, 1, 9, 30, 0, 1),  # naive: UTC, as protobuf takes it
    ],
)
def test_a_summary_stamps_times_exactly_as_protobuf_converts_them(at: datetime) -> None:
    from services.tickets.convert import summary_pb

    expected = Timestamp()
    expected.FromDatetime(at)
    s = summary_pb(
        _row(received_at=at, updated_at=at, lock_fence=3, lock_acquired_at=at, lock_expires_at=at)
    )
    assert s.received_at == s.updated_at == s.last_message_at == expected
    assert s.lock.acquired_at == s.lock.expires_at == expected


def test_tickets_without_a_running_sla_sort_after_every_due_time() -> None:
    due = datetime(2027, 1, 12, 1, 0, tzinfo=UTC)
    assert query.sort_value(_row(sla_due_at=due), query.Sort.SLA_DUE_AT) == due
    assert query.sort_value(_row(), query.Sort.SLA_DUE_AT) == query.NO_SLA_DUE
    c = query.ListCursor(query.Sort.SLA_DUE_AT, True, query.NO_SLA_DUE, uuid.UUID(int=5))
    assert query.ListCursor.decode(c.encode(), query.Sort.SLA_DUE_AT, True) == c
    sql, _ = query.build_list_query(TENANT, query.TicketQuery(sort=query.Sort.SLA_DUE_AT), 10)
    assert "coalesce(t.sla_due_at, timestamptz '9999-12-31 00:00:00+00')" in sql
