"""outbound: immediate and scheduled sending over SMTP.

Until its issue lands, the process serves the gRPC health service only."""
