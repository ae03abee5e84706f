"""`python -m services.outbound`: the outbound service (see app.py)."""

from services.runtime.service import run

from .app import main

run(main)
