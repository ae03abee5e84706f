"""TicketsService over gRPC: one servicer made of the parts of the tickets API."""

from __future__ import annotations

from switchboard.v1 import tickets_pb2_grpc

from .api_assign import AssignApi
from .api_contacts import ContactsApi
from .api_exports import ExportsApi
from .api_imports import ImportsApi
from .api_locks import LocksApi
from .api_notes import NotesApi
from .api_outreach import OutreachApi
from .api_reshape import ReshapeApi
from .api_rules import RulesApi
from .api_segments import SegmentsApi
from .api_tickets import TicketsCoreApi
from .deps import Deps


class TicketsApi(
    AssignApi,
    ExportsApi,
    ReshapeApi,
    NotesApi,
    TicketsCoreApi,
    LocksApi,
    ContactsApi,
    OutreachApi,
    SegmentsApi,
    ImportsApi,
    RulesApi,
    tickets_pb2_grpc.TicketsServiceServicer,
):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
