"""The audit row of a send's change (tickets/send_audit.py): what the ticket's history says."""

from switchboard.v1 import events_pb2

from services.tickets.send_audit import audit_of


def test_an_smtp_attempt_names_the_servers_reply() -> None:
    change = events_pb2.SendChanged(
        send_id="s1",
        kind="reply",
        action="sent",
        previous_state="sending",
        state="sent",
        attempts=1,
        smtp_code=250,
        smtp_message="2.0.0 OK queued",
    )
    _, _, note = audit_of(change)
    assert note == "reply s1; attempt 1: 250 2.0.0 OK queued"


def test_a_channel_delivery_has_no_code_zero() -> None:
    change = events_pb2.SendChanged(
        send_id="s2",
        kind="reply",
        action="sent",
        previous_state="sending",
        state="sent",
        attempts=1,
        smtp_message="delivered through chat (message 2)",
        channel="chat",
    )
    _, _, note = audit_of(change)
    assert note == "reply s2 via chat; attempt 1: delivered through chat (message 2)"


def test_a_channel_reply_submitted_names_its_channel() -> None:
    change = events_pb2.SendChanged(
        send_id="s3", kind="reply", action="submitted", state="scheduled", channel="line"
    )
    action, _, note = audit_of(change)
    assert (action, note) == ("send.submitted", "reply s3 via line")
