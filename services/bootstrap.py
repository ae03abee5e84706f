"""`python -m services.bootstrap`: everything a release needs before its services start,
done idempotently (the chart runs it as a Job named with the release revision; services
also do their own part at start, so running it twice or not at all is safe).

For every service with a database: create the database if allowed, apply its migrations.
Then provision every JetStream stream and durable consumer.

Per service, `SB_<NAME>_DATABASE_URL` and `SB_<NAME>_DATABASE_NAME` override the shared
`SB_DATABASE_URL` and the default database name `sb_<name>`.
"""

from __future__ import annotations

import os

from services.runtime import log, registry
from services.runtime import settings as rt_settings
from services.runtime.bus import Bus, default_streams
from services.runtime.db import Database, with_database
from services.runtime.service import run, service_migrations

# The services that own a database, and every durable consumer: from the registry.
DATABASE_SERVICES = registry.database_services()
CONSUMERS = registry.all_consumers()


async def main() -> int:
    settings = rt_settings.load(rt_settings.ServiceSettings)
    log.configure("bootstrap", settings.effective_log_format, settings.log_level)
    logger = log.get("bootstrap")
    for name in DATABASE_SERVICES:
        prefix = f"SB_{name.upper()}_"
        url = os.environ.get(prefix + "DATABASE_URL") or settings.database_url
        db_name = os.environ.get(prefix + "DATABASE_NAME") or f"sb_{name}"
        db = Database(with_database(url, db_name), min_size=1, max_size=1)
        await db.open(service_migrations(name), create=settings.database_create)
        await db.close()
        logger.info("database ready", service=name, database=db_name)
    bus = Bus(settings.nats_url, "sb-bootstrap")
    await bus.connect()
    await bus.provision(default_streams(settings.nats_replicas), CONSUMERS)
    await bus.drain()
    logger.info("streams and consumers ready", consumers=[c.durable for c in CONSUMERS])
    return 0


if __name__ == "__main__":
    run(main)
