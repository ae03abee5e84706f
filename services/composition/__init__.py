"""composition: templates, phrases, signatures, drafts, pre-send checks.

Until its issue lands, the process serves the gRPC health service only."""
