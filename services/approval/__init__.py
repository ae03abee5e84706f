"""approval: approval policies, requests and stage decisions.

Until its issue lands, the process serves the gRPC health service only."""
