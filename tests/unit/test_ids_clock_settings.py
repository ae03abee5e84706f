"""Ids, clock and settings: the pieces every service leans on."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from services.devstack.stack import ROOT
from services.runtime.clock import ManualClock
from services.runtime.errors import InvalidArgument
from services.runtime.ids import IdGenerator, parse_uuid


def test_ids_are_uuidv7_and_sort_by_creation_even_within_one_millisecond() -> None:
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=UTC))
    ids = IdGenerator(clock)
    same_ms = [ids.new() for _ in range(5000)]  # the clock does not move: a counter orders them
    clock.advance(milliseconds=1)
    later = ids.new()
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in same_ms)
    assert same_ms == sorted(same_ms) and len(set(same_ms)) == 5000
    assert later > same_ms[-1]
    ms = later.int >> 80
    assert ms == int(clock.now().timestamp() * 1000) or ms > int(clock.now().timestamp() * 1000)


def test_ids_from_a_later_time_sort_after() -> None:
    clock = ManualClock()
    ids = IdGenerator(clock)
    a = ids.new()
    clock.advance(seconds=1)
    assert ids.new() > a


def test_parse_uuid_names_the_field_on_bad_input() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_uuid("nope", "ticket_id")
    assert err.value.field == "ticket_id"


def test_a_bad_setting_stops_the_service_with_a_clear_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "services.routing"],
        env={"SB_GRPC_PORT": "eighty", "SB_LOG_LEVEL": "chatty", "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "SB_GRPC_PORT" in proc.stderr and "'eighty'" in proc.stderr
    assert "SB_LOG_LEVEL" in proc.stderr and "'chatty'" in proc.stderr
    assert "Traceback" not in proc.stderr
