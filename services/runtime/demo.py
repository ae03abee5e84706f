"""The demo tenant's fixed ids, for the services that seed their part of it (accounts:
the tenant, inboxes and operators; composition: templates, phrases and signatures) under
`make run` and the tests' stack. Each service seeds only its own data."""

from __future__ import annotations

import uuid

DEMO_TENANT = uuid.UUID("0191f000-0000-7000-8000-00000000de00")
SUPPORT_INBOX = uuid.UUID("0191f000-0000-7000-8000-0000000001b1")
SALES_INBOX = uuid.UUID("0191f000-0000-7000-8000-0000000001b2")
DEMO_ADMIN = uuid.UUID("0191f000-0000-7000-8000-0000000000a1")
