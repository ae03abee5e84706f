from functools import partial

from services.runtime.service import health_only, run

run(partial(health_only, "reporting"))
