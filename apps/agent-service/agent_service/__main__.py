"""python3 -m agent_service: run the service until SIGTERM or SIGINT."""

from agent_service.server import main

raise SystemExit(main())
