from services.composition.app import main
from services.runtime.service import run

run(main)
