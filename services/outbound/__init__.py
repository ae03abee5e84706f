"""outbound: immediate and scheduled sending over SMTP, exactly once (issue 7)."""
