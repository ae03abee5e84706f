"""The aiohttp gateway: the one door for web clients (REST + WebSocket). It keeps nothing
durable; it asks the services over gRPC and pushes their events to operators."""
