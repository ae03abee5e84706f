"""Ports for the test stacks (services/devstack/infra.py): under pytest-xdist each worker
draws from its own slice, so two workers' stacks never get the same port."""

import itertools

import pytest

from services.devstack import infra


def test_each_xdist_worker_has_its_own_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    slices = []
    for n in range(3):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{n}")
        slices.append(infra._port_range())
    for (lo, hi), (lo2, _) in itertools.pairwise(slices):
        assert lo < hi <= lo2
    low, high = infra._PORT_RANGE
    assert slices[0][0] == low and slices[-1][1] <= high
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    lo, hi = slices[1]
    assert all(lo <= infra.free_port() < hi for _ in range(20))


def test_one_process_draws_from_the_whole_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert infra._port_range() == infra._PORT_RANGE
