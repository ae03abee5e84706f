"""The roller (issue 19 §2): folds the facts not yet folded (`facts_unrolled`) into the
rollups, a batch per transaction — the queue rows deleted, the rollups added to, together
— so each fact is folded exactly once, into the bucket of when it happened however late it
came. Replicas take disjoint batches (FOR UPDATE SKIP LOCKED). Woken by the intake."""

from __future__ import annotations

from services.runtime.db import Database
from services.runtime.periodic import PeriodicTask

from . import rollups

BATCH = 5000


async def roll_once(db: Database, batch: int = BATCH) -> int:
    """Fold one batch; how many facts it folded."""
    async with db.transaction() as conn:
        rows = await conn.fetch(
            f"""WITH taken AS (
                  DELETE FROM facts_unrolled WHERE fact_id IN (
                    SELECT fact_id FROM facts_unrolled ORDER BY fact_id LIMIT $1
                    FOR UPDATE SKIP LOCKED)
                  RETURNING fact_id)
                SELECT {rollups.FOLD_COLUMNS} FROM facts
                WHERE id IN (SELECT fact_id FROM taken)""",
            batch,
        )
        await rollups.fold(conn, [rollups.fold_fact(r) for r in rows])
    return len(rows)


class Roller(PeriodicTask):
    def __init__(self, db: Database, every_s: float = 1.0, batch: int = BATCH) -> None:
        super().__init__("reporting-roller", every_s)
        self._db = db
        self._batch = batch

    async def step(self) -> bool:
        return await roll_once(self._db, self._batch) >= self._batch
