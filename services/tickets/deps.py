"""What the tickets API's parts share, built once in the composition root (app.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox

if TYPE_CHECKING:
    from .contacts import ContactsRepo
    from .directory import Directory
    from .locks import ReplyLocks
    from .repo import TicketsRepo
    from .search_limit import SearchLimiter


@dataclass
class Deps:
    db: Database
    outbox: Outbox
    clock: Clock
    ids: IdGenerator
    repo: TicketsRepo
    contacts: ContactsRepo
    locks: ReplyLocks
    directory: Directory
    thread_key: bytes | None
    search_limit: SearchLimiter
    # issue 20: wakes the CSV import runner when a job is stored (None: it polls)
    wake_imports: Callable[[], None] | None = None
