"""Routing rules (RTE-1), free of I/O: the model, validation of what an administrator
saves, conditions, actions and the engine that evaluates rules for a mail (and the dry run)."""
