"""tickets: tickets and their messages (locks, contacts and the rest come with issue 4)."""
