"""Business-hours calendars (RTE-4): weekends, Japanese public holidays, slots crossing
midnight, DST, dated and yearly holidays, and the refusal of a slot that makes no sense."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.runtime.calendars import (
    Calendar,
    Holiday,
    Slot,
    in_hours_of,
    make_slot,
    public_holidays,
    zone_of,
)
from services.runtime.errors import InvalidArgument

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


def office(zone: str = "Asia/Tokyo", public: str = "", **kw: object) -> Calendar:
    """Monday to Friday, 09:00–18:00."""
    slots = tuple(
        make_slot(d, "09:00", "18:00", False, field="s")
        for d in ("mon", "tue", "wed", "thu", "fri")
    )
    return Calendar.checked(zone, slots, public_holidays=public, **kw)  # type: ignore[arg-type]


def tokyo(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)  # type: ignore[misc]


def test_minutes_left_on_friday_carry_over_the_weekend_to_monday_morning() -> None:
    cal = office()
    friday_5pm = tokyo(2027, 1, 15, 17, 0)
    due = cal.add_business_minutes(friday_5pm, 120)
    assert due == tokyo(2027, 1, 18, 10, 0)  # 60 on Friday, 60 on Monday
    assert cal.business_minutes_between(friday_5pm, due) == 120
    assert not cal.is_open(tokyo(2027, 1, 16, 12, 0))  # Saturday noon
    assert cal.is_open(tokyo(2027, 1, 18, 9, 0)) and not cal.is_open(tokyo(2027, 1, 18, 8, 59))


def test_coming_of_age_day_the_second_monday_of_january_is_closed_with_japanese_holidays() -> None:
    assert (date(2027, 1, 11), "成人の日") in public_holidays("JP", 2027)
    friday = tokyo(2027, 1, 8, 17, 30)
    with_holidays = office(public="JP")
    assert with_holidays.add_business_minutes(friday, 60) == tokyo(2027, 1, 12, 9, 30)
    assert not with_holidays.is_open(tokyo(2027, 1, 11, 10, 0))
    assert office().add_business_minutes(friday, 60) == tokyo(2027, 1, 11, 9, 30)


def test_dated_and_yearly_holidays_close_their_day() -> None:
    cal = office(
        holidays=(
            Holiday(date(2027, 1, 14), "棚卸し"),
            Holiday(date(2000, 1, 13), "創立記念日", yearly=True),
        )
    )
    tuesday = tokyo(2027, 1, 12, 17, 0)
    # Tuesday 60 minutes; Wednesday 13th (yearly) and Thursday 14th (dated) closed; Friday
    assert cal.add_business_minutes(tuesday, 120) == tokyo(2027, 1, 15, 10, 0)
    assert not cal.is_open(tokyo(2028, 1, 13, 10, 0))  # the yearly one, again next year


def test_a_slot_crossing_midnight_runs_into_the_next_day() -> None:
    night = Calendar.checked("Asia/Tokyo", (make_slot("fri", "22:00", "02:00", True, field="s"),))
    assert night.is_open(tokyo(2027, 1, 15, 23, 0))
    assert night.is_open(tokyo(2027, 1, 16, 1, 59)) and not night.is_open(tokyo(2027, 1, 16, 2, 0))
    assert night.add_business_minutes(tokyo(2027, 1, 15, 23, 0), 120) == tokyo(2027, 1, 16, 1, 0)
    # 150 minutes left that night, the other 30 the next Friday night
    assert night.add_business_minutes(tokyo(2027, 1, 15, 23, 30), 180) == tokyo(2027, 1, 22, 22, 30)
    assert (
        night.business_minutes_between(tokyo(2027, 1, 15, 12, 0), tokyo(2027, 1, 16, 12, 0)) == 240
    )


def test_the_part_of_a_night_slot_on_a_holiday_is_closed() -> None:
    night = Calendar.checked(
        "Asia/Tokyo",
        (make_slot("fri", "22:00", "02:00", True, field="s"),),
        (Holiday(date(2027, 1, 16), "closed Saturday"),),
    )
    assert night.is_open(tokyo(2027, 1, 15, 23, 0)) and not night.is_open(tokyo(2027, 1, 16, 1, 0))


def test_a_day_on_which_new_york_springs_forward_has_23_hours() -> None:
    every_day = tuple(
        make_slot(d, "00:00", "24:00", False, field="s")
        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    )
    cal = Calendar.checked("America/New_York", every_day)
    sunday = datetime(2027, 3, 14, tzinfo=NEW_YORK)
    monday = datetime(2027, 3, 15, tzinfo=NEW_YORK)
    assert cal.business_time_between(sunday, monday) == timedelta(hours=23)
    saturday_noon = datetime(2027, 3, 13, 12, 0, tzinfo=NEW_YORK)  # a start in local time
    assert cal.add_business_minutes(saturday_noon, 24 * 60) == datetime(
        2027, 3, 14, 13, 0, tzinfo=NEW_YORK
    )
    assert cal.add_business_minutes(sunday, 23 * 60) == monday


def test_office_hours_across_the_dst_change_keep_their_wall_clock_times() -> None:
    cal = office("America/New_York")
    friday_5pm_est = datetime(2027, 3, 12, 17, 0, tzinfo=NEW_YORK)
    due = cal.add_business_minutes(friday_5pm_est, 120)
    assert due == datetime(2027, 3, 15, 10, 0, tzinfo=NEW_YORK)
    assert due.astimezone(NEW_YORK).utcoffset() == timedelta(hours=-4)  # EDT now
    assert friday_5pm_est.utcoffset() == timedelta(hours=-5)
    # 64 hours pass, not the 65 on the wall clock: an hour was skipped
    assert due - friday_5pm_est == timedelta(hours=64)


def test_overlapping_slots_count_once() -> None:
    cal = Calendar.checked(
        "UTC",
        (
            make_slot("mon", "09:00", "12:00", False, field="a"),
            make_slot("mon", "11:00", "13:00", False, field="b"),
        ),
    )
    monday = datetime(2027, 1, 4, tzinfo=ZoneInfo("UTC"))
    assert cal.business_minutes_between(monday, monday + timedelta(days=1)) == 240


@pytest.mark.parametrize(
    ("slot", "field"),
    [
        (("mon", "18:00", "09:00", False), "slots[0].end"),
        (("mon", "09:00", "09:00", False), "slots[0].end"),
        (("mon", "22:00", "23:00", True), "slots[0].end"),
        (("monday", "09:00", "18:00", False), "slots[0].weekday"),
        (("mon", "25:00", "26:00", False), "slots[0].start"),
        (("mon", "9:00", "18:00", False), "slots[0].start"),
        (("mon", "24:00", "02:00", True), "slots[0].start"),
    ],
)
def test_a_slot_that_makes_no_sense_is_refused_naming_its_field(
    slot: tuple[str, str, str, bool], field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        make_slot(*slot, field="slots[0]")
    assert err.value.field == field


def test_an_unknown_zone_country_or_no_slot_is_refused() -> None:
    for name in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(InvalidArgument) as err:
            zone_of(name)
        assert err.value.field == "time_zone"
    with pytest.raises(InvalidArgument) as err:
        Calendar.checked("Asia/Tokyo", (Slot(0, 540, 1080),), public_holidays="XX")
    assert err.value.field == "public_holidays"
    with pytest.raises(InvalidArgument) as err:
        Calendar.checked("Asia/Tokyo", ())
    assert err.value.field == "slots"


def test_in_hours_answers_for_a_tenant_s_calendar_and_none_for_an_unknown_one() -> None:
    in_hours = in_hours_of({"c1": office(public="JP")})
    assert in_hours("c1", tokyo(2027, 1, 12, 10, 0)) is True
    assert in_hours("c1", tokyo(2027, 1, 11, 10, 0)) is False  # 成人の日
    assert in_hours("nope", tokyo(2027, 1, 12, 10, 0)) is None
