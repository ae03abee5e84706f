"""accounts: tenants, operators, inboxes and their addresses, sessions, login history."""
