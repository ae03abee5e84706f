"""Switchboard's services: one folder each, and the shared runtime they all use."""
