"""The registry (services/runtime/registry.py) is the one list of processes: what every
other list is read from must be consistent by construction, and what it declares must hold."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from services import bootstrap
from services.devstack import stack
from services.runtime import events, registry, settings
from services.runtime.bus import ConsumerSpec
from services.runtime.service import ServiceRuntime


def test_every_component_starts_after_the_services_it_calls() -> None:
    order = registry.start_order()
    assert sorted(order) == sorted(c.name for c in registry.COMPONENTS)
    for component in registry.COMPONENTS:
        for callee in component.calls:
            assert order.index(callee) < order.index(component.name), (component.name, callee)
    assert order[-1] == "gateway"  # it calls everyone
    assert stack.START_ORDER == order


def test_calls_name_grpc_services_and_never_the_caller_itself() -> None:
    for component in registry.COMPONENTS:
        for callee in component.calls:
            assert registry.get(callee).grpc, (component.name, callee)
            assert callee != component.name


def test_every_stream_but_dead_letters_has_one_producer() -> None:
    owners: dict[str, list[str]] = {}
    for component in registry.COMPONENTS:
        for stream in component.streams:
            owners.setdefault(stream.name, []).append(component.name)
    assert set(owners) == {s.name for s in events.STREAMS if s is not events.DEADLETTER}
    assert all(len(names) == 1 for names in owners.values()), owners


def test_consumers_are_named_after_their_service_and_read_a_known_stream() -> None:
    durables = [spec.durable for spec in registry.all_consumers()]
    assert len(durables) == len(set(durables))
    for component in registry.COMPONENTS:
        for spec in component.consumers:
            assert spec.durable.startswith(f"{component.name}__"), spec.durable
            assert spec.stream in events.STREAMS
            for subject in spec.filter_subjects:
                assert subject.startswith(f"sb.{spec.stream.domain}.")
    assert set(bootstrap.CONSUMERS) == set(registry.all_consumers())


def test_ports_and_modules_are_distinct_and_every_module_exists() -> None:
    ports = [c.port for c in registry.COMPONENTS] + [c.metrics_port for c in registry.COMPONENTS]
    assert len(ports) == len(set(ports))
    for component in registry.COMPONENTS:
        assert importlib.util.find_spec(component.module) is not None, component.module
    assert bootstrap.DATABASE_SERVICES == tuple(c.name for c in registry.SERVICES if c.database)
    for name in bootstrap.DATABASE_SERVICES:  # a database owner has its migrations
        assert importlib.util.find_spec(f"services.{name}.migrations") is not None, name


def test_every_service_address_comes_from_its_variable_or_its_default_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SB_TICKETS_ADDR", "tickets.svc:50051")
    loaded = settings.RuntimeSettings()
    assert loaded.addr_of("tickets") == "tickets.svc:50051"
    for service in registry.SERVICES:
        if service.name != "tickets":
            assert loaded.addr_of(service.name) == f"127.0.0.1:{service.port}"
    with pytest.raises(KeyError):
        loaded.addr_of("gateway")  # not a gRPC service


async def test_a_service_cannot_run_a_consumer_its_entry_does_not_declare() -> None:
    rt = ServiceRuntime("routing", settings.ServiceSettings())
    rt.bus = object()  # type: ignore[assignment]  # never reached: refused before use
    stray = ConsumerSpec(events.INGEST, "routing__stray", (events.MESSAGE_RECEIVED.subject,))
    with pytest.raises(RuntimeError, match="routing__stray is not declared for routing"):
        await rt.add_consumer(stray, lambda env, delivery: asyncio.sleep(0))


def test_plain_subscriptions_follow_subjects_of_known_streams() -> None:
    subjects = {t.subject for t in events.EVENT_TYPES.values()}
    for component in registry.COMPONENTS:
        for subject in component.subscriptions:
            if subject == registry.LIVE_CHAT_SUBJECT:  # core NATS between gateways, JSON
                continue
            assert subject in subjects or any(subject == s.subjects[0] for s in events.STREAMS), (
                subject
            )
    assert events.SESSION_ENDED.subject in registry.GATEWAY.subscriptions
    assert events.ACCESS_CHANGED.subject in registry.GATEWAY.subscriptions
