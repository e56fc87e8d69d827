"""Benchmark: how fast the embedded executor drives steps through an SDK app.

Starts the executor and a tiny app served by the official SDK (both as
subprocesses on loopback), then runs a 20-step function whose steps do
nothing: first one run at a time (latency per step), then N runs at once
(throughput). Prints steps per second and milliseconds per step.

    .venv/bin/python bench/executor_steps.py --runs 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

import httpx

from devserver.testing import (
    free_port,
    start_app,
    start_executor,
    wait_for_functions,
    wait_for_runs,
)

STEPS = 20

APP_SOURCE = textwrap.dedent(
    f"""
    import os

    import fastapi
    import inngest
    import inngest.fast_api

    url = os.environ["EXECUTOR_URL"]
    client = inngest.Inngest(
        app_id="bench",
        is_production=False,
        api_base_url=url,
        event_api_base_url=url,
    )


    async def nothing() -> None:
        return None


    @client.create_function(
        fn_id="steps", trigger=inngest.TriggerEvent(event="bench/steps")
    )
    async def steps(ctx: inngest.Context) -> int:
        for i in range({STEPS}):
            await ctx.step.run(f"s{{i}}", nothing)
        return {STEPS}


    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [steps])
    """
)


def send(url: str, count: int) -> list[str]:
    events = [{"name": "bench/steps", "data": {"i": i}} for i in range(count)]
    ids: list[str] = httpx.post(f"{url}/e/bench", json=events, timeout=30).json()["ids"]
    return ids


def _instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def timed_runs(url: str, count: int) -> tuple[float, list[float]]:
    """Wall seconds until ``count`` new runs end, and each run's own duration.

    A run's duration comes from the executor's timestamps (first call to
    end), so the client's polling interval does not inflate it.
    """
    start = time.perf_counter()
    ids = send(url, count)
    durations = []
    for event_id in ids:
        (run,) = wait_for_runs(url, event_id, timeout=600)
        if run["status"] != "Completed":
            sys.exit(f"run {run['run_id']} ended {run['status']}: {run.get('output')}")
        durations.append(_instant(run["ended_at"]) - _instant(run["run_started_at"]))
    return time.perf_counter() - start, durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per phase")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bench_app.py").write_text(APP_SOURCE)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        app = start_app(
            "bench_app:app", cwd=root, log_dir=root, env={"EXECUTOR_URL": url}
        )
        executor = start_executor(
            root / "data", [app.extras["serve_url"]], port=port, retry_interval=None
        )
        try:
            wait_for_functions(url, ["bench-steps"])
            timed_runs(url, 1)  # warm-up: imports, connections, SQLite pages

            sequential = [timed_runs(url, 1)[1][0] for _ in range(args.runs)]
            per_run = statistics.median(sequential)
            print(f"one run at a time ({args.runs} runs of {STEPS} steps):")
            print(f"  median {per_run * 1000:.0f} ms per run")
            print(f"  {per_run * 1000 / STEPS:.1f} ms per step")
            print(f"  {STEPS / per_run:.0f} steps/s")

            elapsed, _ = timed_runs(url, args.runs)
            total = args.runs * STEPS
            print(f"{args.runs} runs at once ({total} steps):")
            print(f"  {elapsed:.2f} s, {total / elapsed:.0f} steps/s")
        finally:
            executor.stop()
            app.stop()


if __name__ == "__main__":
    main()
