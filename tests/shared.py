"""`../shared` beside the project: real-world mail from other parsers' test suites
(`../shared/corpora`; see the README, "Tests"). A clone on its own has no `../shared`, and
`make test` is complete without it: the tests that read it are skipped, saying why. In CI
(`CI=true`, which `.ci/run` sets) they are required instead — a missing folder fails them,
so that CI always covers them.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from services.devstack.stack import ROOT

F = TypeVar("F", bound=Callable[..., Any])
SHARED = ROOT.parent / "shared"
CORPORA = SHARED / "corpora"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def required(path: Path = CORPORA) -> Path:
    """`path` (under ../shared) when it is there; otherwise skip the calling test with the
    reason — or fail it in CI."""
    if path.exists():
        return path
    why = f"{path} is not there (../shared beside the project holds the mail corpora)"
    if in_ci():
        pytest.fail(f"CI=true requires it: {why}", pytrace=False)
    pytest.skip(why)
    raise AssertionError("unreachable")  # pytest.skip raises


def needs(path: Path = CORPORA) -> Callable[[F], F]:
    """A decorator for a test that reads `path`: `required(path)` before it runs."""

    def decorate(test: F) -> F:
        if inspect.iscoroutinefunction(test):

            @functools.wraps(test)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                required(path)
                return await test(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> Any:
            required(path)
            return test(*args, **kwargs)

        return cast(F, run)

    return decorate
