"""Time from POST to `succeeded` for each corpus document, through the stack.

    .venv/bin/python bench/summary_latency.py [--repeat 3]

Starts the embedded executor and the backend on free loopback ports (the
executor with its default backoff; no step fails here), submits each
document in tests/data/corpus one at a time, and prints the median time per
document with its size and number of steps. Not a test: figures go in notes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest import stack

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
        home = Path(folder)
        port = stack.free_port()
        backend_url = f"http://{stack.LOOPBACK}:{port}"
        executor = stack.start_executor(
            home / "executor", sdk_urls=[f"{backend_url}/api/inngest"]
        )
        backend = stack.start_backend(
            executor_url=executor.url,
            database_url=f"sqlite+aiosqlite:///{home / 'digest.db'}",
            log_path=home / "backend.log",
            port=port,
        )
        try:
            stack.sync_app(backend.url)
            with httpx.Client(base_url=backend.url, timeout=60) as http:
                # One warm-up job: the first one pays for starting the
                # worker processes and importing scikit-learn in them.
                _run(http, (CORPUS / "pep-0020.rst").read_text())
                print(f"{'document':<16}{'bytes':>8}{'steps':>7}{'median s':>10}")
                for path in sorted(CORPUS.glob("*.rst")):
                    text = path.read_text()
                    times, steps = [], 0
                    for _ in range(args.repeat):
                        elapsed, steps = _run(http, text)
                        times.append(elapsed)
                    median = statistics.median(times)
                    print(f"{path.name:<16}{len(text):>8}{steps:>7}{median:>10.3f}")
        finally:
            backend.stop()
            executor.stop()


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
