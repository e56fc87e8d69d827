"""Time from POST to `succeeded` for each corpus document, through the stack.

    .venv/bin/python bench/summary_latency.py [--repeat 3] [--file PATH]

Starts the embedded executor and the backend on free loopback ports (the
executor with its default backoff; no step fails here), submits each
document in tests/data/corpus (or only PATH) one at a time, and prints the
median time per document with its size and number of steps, and the peak
resident memory of the backend and its worker processes during those runs
(summed, sampled every 20 ms from /proc, Linux only). Not a test: figures go
in notes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest import stack

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--file", type=Path, help="time this document only")
    args = parser.parse_args()
    documents = [args.file] if args.file else sorted(CORPUS.glob("*.rst"))

    with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
        started = stack.start_local_stack(Path(folder))
        backend = started.backend
        try:
            auth = {"Authorization": f"Bearer {stack.dev_token(backend.url)}"}
            with httpx.Client(base_url=backend.url, timeout=60, headers=auth) as http:
                # One warm-up job: the first one pays for starting the
                # worker processes and importing scikit-learn in them.
                _run(http, (CORPUS / "pep-0020.rst").read_text())
                print(
                    f"{'document':<16}{'bytes':>9}{'steps':>7}{'median s':>10}"
                    f"{'peak RSS MB':>13}"
                )
                for path in documents:
                    text = path.read_text()
                    times, steps = [], 0
                    with PeakRss(backend.pid) as rss:
                        for _ in range(args.repeat):
                            elapsed, steps = _run(http, text)
                            times.append(elapsed)
                    median = statistics.median(times)
                    size = len(text.encode())
                    print(
                        f"{path.name:<16}{size:>9}{steps:>7}{median:>10.3f}"
                        f"{rss.peak / 1e6:>13.0f}"
                    )
        finally:
            started.stop()


class PeakRss:
    """Highest summed RSS of a process and its descendants while in use."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, sum(map(_rss, _tree(self.pid))))
            if self._done.wait(self.interval):
                return


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            pids += _tree(int(child))
    return pids


def _rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _run(http: httpx.Client, text: str) -> tuple[float, int]:
    started = time.perf_counter()
    job_id = http.post("/api/summaries", json={"text": text}).json()["id"]
    while True:
        job = http.get(f"/api/summaries/{job_id}").json()
        if job["status"] in {"succeeded", "failed"}:
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    if job["status"] != "succeeded":
        raise SystemExit(f"job failed: {job['error']}")
    return elapsed, int(job["progress"]["total"])


if __name__ == "__main__":
    main()
