"""ingestion: every mail in, stored raw before anything else, announced once."""
