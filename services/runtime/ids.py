"""Time-ordered ids: UUIDv7 (RFC 9562), so ids sort by creation time in indexes and logs."""

from __future__ import annotations

import os
import threading
import uuid

from .clock import Clock, SystemClock


class IdGenerator:
    """UUIDv7 with a monotonic counter inside one millisecond (RFC 9562 §6.2, method 1)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def new(self) -> uuid.UUID:
        ms = int(self._clock.now().timestamp() * 1000)
        with self._lock:
            if ms <= self._last_ms:
                ms = self._last_ms
                self._counter += 1
                if self._counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                    ms += 1
                    self._counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
            else:
                self._counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
            self._last_ms = ms
            counter = self._counter
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
        return uuid.UUID(int=value)

    def new_str(self) -> str:
        return str(self.new())


def parse_uuid(value: str, field: str = "id") -> uuid.UUID:
    """A UUID from user input, or InvalidArgument naming the field."""
    from .errors import InvalidArgument

    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(f"{field} is not a valid id", field=field) from None
