"""The names a ticket's status and priority go by outside protobuf (the REST API, rules,
routing's rows, approval's conditions): one table, read by all."""

from __future__ import annotations

from switchboard.v1 import common_pb2

STATUS_NAMES = {
    common_pb2.TICKET_STATUS_OPEN: "open",
    common_pb2.TICKET_STATUS_PENDING: "pending",
    common_pb2.TICKET_STATUS_RESOLVED: "resolved",
    common_pb2.TICKET_STATUS_NO_ACTION: "no_action",
    common_pb2.TICKET_STATUS_TRASH: "trash",
}
STATUS_VALUES = {name: value for value, name in STATUS_NAMES.items()}
PRIORITY_NAMES = {
    common_pb2.PRIORITY_LOW: "low",
    common_pb2.PRIORITY_NORMAL: "normal",
    common_pb2.PRIORITY_HIGH: "high",
    common_pb2.PRIORITY_URGENT: "urgent",
}
PRIORITY_VALUES = {name: value for value, name in PRIORITY_NAMES.items()}

# The ticket flag a rule's "hand to the inbox's assignment strategy" sets: routing's rules
# put it in message.routed's decision, tickets keeps it on the ticket, and routing's
# assigner takes such a ticket even when the inbox's strategy is manual (RTE-2).
STRATEGY_FLAG = "assign_by_strategy"
