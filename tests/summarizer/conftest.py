"""Shared fixtures for the summariser tests: the real PEP corpus."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
CORPUS_FILES = (
    "pep-0008.rst",
    "pep-0020.rst",
    "pep-0257.rst",
    "pep-0492.rst",
    "pep-0572.rst",
)


@pytest.fixture(params=CORPUS_FILES)
def corpus_doc(request: pytest.FixtureRequest) -> str:
    """The text of each corpus document in turn."""
    name: str = request.param
    return (CORPUS / name).read_text(encoding="utf-8")


@pytest.fixture
def read_corpus() -> Callable[[str], str]:
    """Read one corpus document by file name."""

    def read(name: str) -> str:
        return (CORPUS / name).read_text(encoding="utf-8")

    return read
