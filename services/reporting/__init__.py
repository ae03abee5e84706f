"""reporting: aggregates and live counts from every event.

Until its issue lands, the process serves the gRPC health service only."""
