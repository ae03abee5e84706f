"""A no-op TicketsService for the lock benchmark's ceiling: AcquireReplyLock and
ReleaseReplyLock answer at once, doing nothing (grpc.aio on uvloop, as our services run).

Driven by the same client loop as the real service, it shows what gRPC between two
Python processes alone allows on this machine: no lock path through the tickets gRPC API
can be faster. `python -m tests.bench.grpc_ceiling PORT` serves until terminated.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import grpc
import uvloop
from switchboard.v1 import events_pb2, tickets_pb2, tickets_pb2_grpc


class NoOpLocks(tickets_pb2_grpc.TicketsServiceServicer):
    async def AcquireReplyLock(self, request: Any, context: Any) -> Any:
        return tickets_pb2.AcquireReplyLockResponse(
            acquired=True, lock=events_pb2.ReplyLock(fence=1)
        )

    async def ReleaseReplyLock(self, request: Any, context: Any) -> Any:
        return tickets_pb2.ReleaseReplyLockResponse(released=True)


async def serve(port: int) -> None:
    server = grpc.aio.server()
    tickets_pb2_grpc.add_TicketsServiceServicer_to_server(NoOpLocks(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def spawn(port: int) -> subprocess.Popen[bytes]:
    """The no-op server in its own process, to answer on `port` (see `ready`)."""
    return subprocess.Popen([sys.executable, "-m", "tests.bench.grpc_ceiling", str(port)])


async def ready(port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30)


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
