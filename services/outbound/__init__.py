"""outbound: scheduled and immediate sending over SMTP (issue 7). Until its issue lands, the process serves the gRPC health service only."""
