"""An executor and the dashboard test app, as real processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashboard_stack import Stack, start_stack, stop_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("dashboard"))
    yield stack
    stop_stack(stack)
