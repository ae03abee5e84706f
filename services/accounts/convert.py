"""Small conversions to protobuf that accounts' storage and API share."""

from __future__ import annotations

import uuid
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import common_pb2


def ts(value: datetime | None, into: Timestamp) -> None:
    if value is not None:
        into.FromDatetime(value)


def operator_ref(operator_id: uuid.UUID | str | None, name: str) -> common_pb2.OperatorRef:
    return common_pb2.OperatorRef(id=str(operator_id) if operator_id else "", display_name=name)
