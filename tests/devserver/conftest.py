"""Fixtures that run the executor and the test app as real subprocesses."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from devserver_stack import Stack, start_stack, stop_stack


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One executor + app for a whole module; tests use distinct keys."""
    stack = start_stack(tmp_path_factory.mktemp("stack"))
    yield stack
    stop_stack(stack)


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    """An executor + app for one test, for tests that kill the executor."""
    stack = start_stack(tmp_path)
    yield stack
    stop_stack(stack)


@pytest.fixture
def key() -> Callable[[], str]:
    """Unique ``data.key`` values, so marker files never collide."""
    return lambda: uuid.uuid4().hex[:12]
