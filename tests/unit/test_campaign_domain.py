"""Campaigns' rules (issue 20, OUT-6): the state machine, reserved words and their
rendering, sending windows in a recipient's zone (across DST changes and midnight) and
the per-domain throttle's arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.outbound import campaign_domain as cd
from services.outbound.campaign_domain import Person, Window
from services.runtime.errors import FailedPrecondition, InvalidArgument

WEEKDAYS = (1, 2, 3, 4, 5)
NINE_TO_SIX = Window(9 * 60, 18 * 60, WEEKDAYS)
TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


# -- the state machine -------------------------------------------------------------------


def test_the_campaign_state_machine() -> None:
    assert cd.move("draft", "schedule") == "scheduled"
    assert cd.move("scheduled", "start") == "running"
    assert cd.move("running", "pause") == "paused"
    assert cd.move("paused", "resume") == "running"
    assert cd.move("running", "complete") == "completed"
    for state in ("draft", "scheduled", "running", "paused"):
        assert cd.move(state, "cancel") == "cancelled"
    for state, action in (
        ("draft", "pause"),
        ("scheduled", "pause"),
        ("draft", "resume"),
        ("running", "resume"),
        ("running", "schedule"),
        ("paused", "pause"),
        ("completed", "cancel"),
        ("cancelled", "resume"),
        ("cancelled", "schedule"),
    ):
        with pytest.raises(FailedPrecondition):
            cd.move(state, action)
    cd.editable("draft")
    cd.editable("scheduled")
    for state in ("running", "paused", "completed", "cancelled"):
        with pytest.raises(FailedPrecondition):
            cd.editable(state)


# -- reserved words ----------------------------------------------------------------------


def test_unknown_reserved_words_are_named() -> None:
    cd.check_text("Spring", "Hello {{customer.name}}", "{{custom.plan}} {{unsubscribe.url}}")
    with pytest.raises(InvalidArgument) as err:
        cd.check_text("Spring", "Hello {{customer.nmae}}", "body")
    assert err.value.field == "subject" and "customer.nmae" in err.value.message
    with pytest.raises(InvalidArgument) as err:
        cd.check_text("Spring", "Hello", "{{ticket.number}}")
    assert err.value.field == "body" and "ticket.number" in err.value.message
    with pytest.raises(InvalidArgument) as err:
        cd.check_text("Spring", "Hello", "{{custom.Bad-Key}}")
    assert err.value.field == "body"
    for name, subject, body, field in (
        ("", "s", "b", "name"),
        ("n", " ", "b", "subject"),
        ("n", "two\nlines", "b", "subject"),
        ("n", "s", "", "body"),
    ):
        with pytest.raises(InvalidArgument) as err:
            cd.check_text(name, subject, body)
        assert err.value.field == field


def test_rendering_fills_each_word_and_a_missing_value_uses_its_fallback_or_nothing() -> None:
    person = Person(
        address="taro@example.jp", name="山田 太郎", custom={"plan": "Pro", "company": "山田商事"}
    )
    text = (
        "{{customer.name}}様 ({{ customer.company }}) {{custom.plan}} {{inbox.name}} "
        "{{today}} {{unsubscribe.url}} {{customer.address}}"
    )
    out = cd.render(
        text, person, inbox_name="Support", today=date(2026, 4, 1), unsubscribe_url="https://u/x"
    )
    assert out == "山田 太郎様 (山田商事) Pro Support 2026-04-01 https://u/x taro@example.jp"
    bare = Person(address="a@b.example")
    out = cd.render(
        "{{customer.name|お客様}}様 [{{customer.company}}] {{custom.plan|Free}}",
        bare,
        inbox_name="",
        today=date(2026, 4, 1),
        unsubscribe_url="",
    )
    assert out == "お客様様 [] Free"


# -- windows -----------------------------------------------------------------------------


def test_parse_window_names_the_bad_field() -> None:
    assert cd.parse_window("09:00", "18:00", [5, 1, 1]) == Window(540, 1080, (1, 5))
    assert cd.parse_window("22:00", "06:00", [1]).end == 360
    for start, end, days, field in (
        ("9", "18:00", [1], "window.start"),
        ("09:00", "25:00", [1], "window.end"),
        ("09:00", "09:00", [1], "window.end"),
        ("24:00", "09:00", [1], "window.start"),
        ("09:00", "18:00", [], "window.days"),
        ("09:00", "18:00", [0], "window.days"),
    ):
        with pytest.raises(InvalidArgument) as err:
            cd.parse_window(start, end, days)
        assert err.value.field == field, (start, end, days)


def test_inside_the_window_is_now_outside_the_next_opening_in_the_recipients_zone() -> None:
    # Wednesday 2026-04-01 03:00 UTC = 12:00 in Tokyo: open there; 23:00 in New York: not
    now = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
    assert cd.next_open(now, TOKYO, NINE_TO_SIX) == now
    assert cd.is_open(now, TOKYO, NINE_TO_SIX)
    opens = cd.next_open(now, NEW_YORK, NINE_TO_SIX)
    assert opens.astimezone(NEW_YORK) == datetime(2026, 4, 1, 9, 0, tzinfo=NEW_YORK)
    # Friday 19:00 in Tokyo: the next opening is Monday 09:00
    friday = datetime(2026, 4, 3, 10, 0, tzinfo=UTC)
    assert cd.next_open(friday, TOKYO, NINE_TO_SIX).astimezone(TOKYO) == datetime(
        2026, 4, 6, 9, 0, tzinfo=TOKYO
    )
    assert cd.next_open(now, TOKYO, None) == now


def test_windows_are_wall_clock_times_across_daylight_saving_changes() -> None:
    # New York springs forward on Sunday 2026-03-08 (02:00 → 03:00): a window of every
    # day opens at 09:00 local on both sides, i.e. 14:00 UTC before and 13:00 UTC after
    daily = Window(9 * 60, 10 * 60, (1, 2, 3, 4, 5, 6, 7))
    sat = cd.next_open(datetime(2026, 3, 7, 11, 0, tzinfo=UTC), NEW_YORK, daily)
    sun = cd.next_open(datetime(2026, 3, 8, 11, 0, tzinfo=UTC), NEW_YORK, daily)
    assert sat == datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
    assert sun == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    # a window starting at 02:30, a time that does not exist that day: just after the gap
    early = Window(2 * 60 + 30, 4 * 60, (7,))
    opens = cd.next_open(datetime(2026, 3, 8, 5, 0, tzinfo=UTC), NEW_YORK, early)
    assert opens.astimezone(NEW_YORK).hour == 3
    assert opens.astimezone(NEW_YORK).date() == date(2026, 3, 8)
    # falling back (2026-11-01 02:00 → 01:00): 09:00 local is 14:00 UTC again
    nov = cd.next_open(datetime(2026, 11, 1, 11, 0, tzinfo=UTC), NEW_YORK, daily)
    assert nov == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_a_window_across_midnight() -> None:
    night = Window(22 * 60, 6 * 60, (1,))  # Monday 22:00 to Tuesday 06:00
    tue_2am = datetime(2026, 4, 7, 2, 0, tzinfo=TOKYO)  # still Monday's window
    assert cd.next_open(tue_2am, TOKYO, night) == tue_2am
    tue_7am = datetime(2026, 4, 7, 7, 0, tzinfo=TOKYO)
    assert cd.next_open(tue_7am, TOKYO, night).astimezone(TOKYO) == datetime(
        2026, 4, 13, 22, 0, tzinfo=TOKYO
    )


def test_an_unknown_zone_falls_back_to_the_tenants_then_utc() -> None:
    assert cd.zone("Asia/Tokyo", "UTC") == TOKYO
    assert cd.zone("", "Asia/Tokyo") == TOKYO
    assert cd.zone("Mars/Olympus", "Asia/Tokyo") == TOKYO
    assert cd.zone("", "nowhere") == ZoneInfo("UTC")


# -- the throttle ------------------------------------------------------------------------


def test_the_throttle_periods_and_allowance() -> None:
    at = datetime(2026, 4, 1, 12, 34, 56, 789000, tzinfo=UTC)
    assert cd.period_of(at, 60) == datetime(2026, 4, 1, 12, 34, tzinfo=UTC)
    assert cd.period_of(at, 5) == datetime(2026, 4, 1, 12, 34, 55, tzinfo=UTC)
    assert cd.period_of(at - timedelta(seconds=50), 60) == cd.period_of(at, 60)
    assert cd.period_of(at + timedelta(seconds=4), 60) > cd.period_of(at, 60)
    assert cd.allowance(None, 10_000, 200) == 200
    assert cd.allowance(60, 0, 200) == 60
    assert cd.allowance(60, 50, 200) == 10
    assert cd.allowance(60, 60, 5) == 0
    assert cd.allowance(60, 70, 5) == 0
    assert cd.domain_of("Taro@Example.JP") == "example.jp"


def test_schedule_and_throttle_checks() -> None:
    now = datetime(2026, 4, 1, tzinfo=UTC)
    assert cd.check_schedule(now - timedelta(hours=1), now) == now
    assert cd.check_schedule(now + timedelta(days=3), now) == now + timedelta(days=3)
    with pytest.raises(InvalidArgument) as err:
        cd.check_schedule(now + timedelta(days=400), now)
    assert err.value.field == "scheduled_at"
    cd.check_throttle(None)
    cd.check_throttle(1)
    with pytest.raises(InvalidArgument) as err:
        cd.check_throttle(0)
    assert err.value.field == "throttle_per_domain_per_minute"


def test_a_campaign_mail_is_written_with_encoded_words_and_unfolded_list_headers() -> None:
    from email import message_from_bytes
    from email.policy import default

    from services.outbound.campaign_mail import CAMPAIGN_HEADERS, build_bulk

    url = "<https://desk.example/unsubscribe/" + "x" * 200 + ">"
    raw = build_bulk(
        sender=("サポート窓口", "help@desk.example"),
        to=("Yamada, Taro\r\nBcc: evil@x.example", "taro@example.jp"),
        subject="春のご案内" * 12 + "\nBcc: evil@x.example",
        text="山田様\nお知らせです。\n",
        message_id="campaign.abc.1234@desk.example",
        date=datetime(2026, 4, 1, 9, 0, tzinfo=UTC),
        headers=(*CAMPAIGN_HEADERS, ("List-Unsubscribe", url)),
    )
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines) and b"\n" not in raw.replace(b"\r\n", b"")
    assert not any(line.lower().startswith(b"bcc:") for line in lines)  # no header injected
    m = message_from_bytes(raw, policy=default)
    assert m["From"].addresses[0].display_name == "サポート窓口"
    assert m["To"].addresses[0].addr_spec == "taro@example.jp"
    assert str(m["Subject"]).startswith("春のご案内春のご案内") and "\n" not in str(m["Subject"])
    assert str(m["List-Unsubscribe"]) == url and m["Precedence"] == "bulk"
    assert m["Message-ID"] == "<campaign.abc.1234@desk.example>"
    assert m.get_body(("plain",)).get_content() == "山田様\r\nお知らせです。\r\n"
