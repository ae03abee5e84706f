"""Every gRPC servicer method is annotated with the request and response types of its
service's descriptor (a client-streaming method with an AsyncIterator of its request; a
server-streaming one is an async generator returning an AsyncIterator of its response), so
mypy checks the bodies against the generated messages."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import AsyncIterator

import pytest
from google.protobuf.descriptor import Descriptor, MethodDescriptor

SERVICERS = {
    "accounts": "services.accounts.api:AccountsApi",
    "composition": "services.composition.api_services:CompositionApi",
    "ingestion": "services.ingestion.api:IngestionApi",
    "outbound": "services.outbound.api_surveys:OutboundWithSurveys",
    "outbound_outreach": "services.outbound.api_outreach:OutreachApi",
    "reporting_exports": "services.reporting.exports_api:ExportsApi",
    "tickets": "services.tickets.api:TicketsApi",
}


def _message_class(desc: Descriptor) -> type:
    module = importlib.import_module(f"switchboard.v1.{desc.file.name.split('/')[-1][:-6]}_pb2")
    return getattr(module, desc.name)  # type: ignore[no-any-return]


def _annotations(cls: type, method: MethodDescriptor) -> tuple[object, object]:
    fn = getattr(cls, method.name)
    ours = (
        inspect.isasyncgenfunction(fn)
        if method.server_streaming
        else inspect.iscoroutinefunction(fn)
    )
    assert ours, f"{method.name} is not our async method"
    params = list(inspect.signature(fn).parameters.values())
    assert [p.name for p in params] == [
        "self",
        "request_iterator" if method.client_streaming else "request",
        "context",
    ], method.name
    request, ret = params[1].annotation, inspect.signature(fn).return_annotation
    return eval(request, fn.__globals__), eval(ret, fn.__globals__)


@pytest.mark.parametrize("service", sorted(SERVICERS))
def test_every_rpc_is_annotated_with_its_generated_request_and_response(service: str) -> None:
    module_name, class_name = SERVICERS[service].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    pb2 = importlib.import_module(f"switchboard.v1.{service}_pb2")
    (descriptor,) = pb2.DESCRIPTOR.services_by_name.values()
    assert descriptor.methods
    for method in descriptor.methods:
        request, response = _annotations(cls, method)
        expected = _message_class(method.input_type)
        if method.client_streaming:
            expected = AsyncIterator[expected]  # type: ignore[valid-type]
        assert request == expected, method.name
        produced = _message_class(method.output_type)
        if method.server_streaming:
            produced = AsyncIterator[produced]  # type: ignore[valid-type]
        assert response == produced, method.name
