"""composition: templates, phrases, signatures, drafts and pre-send checks (issue 6). Until its issue lands, the process serves the gRPC health service only."""
