"""routing: decides where a received mail goes (threading; rules come later), and owns the
SLA: business-hours calendars, SLA policies, each ticket's SLA clocks and their timers."""
