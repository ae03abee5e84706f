from services.runtime.service import run

from .app import main

run(main)
