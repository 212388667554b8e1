"""python3 -m agent_service: run the service until SIGTERM or SIGINT."""

import signal
import sys


def _stop_while_starting(signum: int, _frame: object) -> None:
    # As PID 1 of a container the process would ignore SIGTERM until the event loop installs
    # its own handler (after the imports, seconds on a busy host): nothing to drain yet.
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _stop_while_starting)

from agent_service.server import main  # noqa: E402 - after the early handler, on purpose

raise SystemExit(main())
