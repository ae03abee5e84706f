"""routing: decides where a received mail goes (threading, rules and SLA come later)."""
