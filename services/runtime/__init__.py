"""The shared runtime: settings, logging, gRPC bootstrap, bus, store, outbox, ids, clock.

Every service and the gateway build on these modules; a service folder holds only what is
specific to it. Import the submodules directly (`from services.runtime import bus`).
"""
