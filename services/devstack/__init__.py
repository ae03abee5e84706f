"""Run the whole system on one machine: PostgreSQL, NATS (JetStream) and Redis from PyPI
packages, then every service and the gateway as their own processes, talking over real
gRPC and NATS exactly as in the cluster. `make run` and the end-to-end tests use it."""
