"""The agent service: the platform's stand-in for the AI-agent API.

One process serves three listeners: the HTTP API (FastAPI under uvicorn), a WebSocket
echo/broadcast server and a Prometheus metrics endpoint over TLS 1.3 with basic auth. Its
configuration is the container contract: environment variables named AGENT_*, with secrets
read from files (see config.py).
"""
