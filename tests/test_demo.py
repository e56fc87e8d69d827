"""`digest demo`, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from digest import stack
from tests.conftest import CORPUS, normalised

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pep-0257.rst"


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # Nothing answers here, so the demo starts its own stack.
        "PUBLIC_URL": f"http://127.0.0.1:{stack.free_port()}",
        "COLUMNS": "400",
    }
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def _summary_lines(output: str) -> list[str]:
    lines = output.split("Summary of ", 1)[1].splitlines()[1:]
    return [line.strip()[2:] for line in lines if line.strip().startswith("- ")]


def test_demo_summarises_the_example_and_stops_what_it_started() -> None:
    done = _demo()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Summary of pep-0257.rst" in done.stdout
    sentences = _summary_lines(done.stdout)
    assert len(sentences) == 5
    source = normalised(EXAMPLE.read_text())
    for sentence in sentences:
        assert normalised(sentence) in source
    assert "step save" in done.stdout


def test_demo_takes_a_file() -> None:
    done = _demo(str(CORPUS / "pep-0020.rst"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Summary of pep-0020.rst" in done.stdout
    assert _summary_lines(done.stdout)


def test_demo_refuses_unusable_files(tmp_path: Path) -> None:
    binary = tmp_path / "image.bin"
    binary.write_bytes(b"\x00\xff\xfe\x00")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    for path, reason in [
        (binary, "not UTF-8 text"),
        (empty, "no words"),
        (tmp_path / "missing.md", "no such file"),
    ]:
        done = _demo(str(path))
        assert done.returncode == 2
        assert reason in done.stdout
        assert "Traceback" not in done.stdout + done.stderr
