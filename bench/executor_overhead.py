"""Benchmark: the executor's per-step overhead, throughput and memory.

Starts the embedded executor and bench/bench_app.py (an app served by the
official SDK through FastAPI) as loopback subprocesses, then measures, in
one run:

1. Per-step time of ``chain-N`` (N sequential no-op ``step.run`` calls) for
   several N, two ways, interleaved run by run so both see the same load:

   - bare: this script plays an executor that costs nothing. It POSTs the
     protocol's call body (event/events/steps/ctx/use_api/version) to the
     function's registered URL, adds each 206 ``StepRun`` to ``steps`` and
     calls again until the 200: N + 1 calls, timed with ``perf_counter``.
   - executor: one event to ``/e/{key}``; the run's time is the executor's
     own record, event ``received_at`` to run ``ended_at`` (milliseconds),
     so this script's polling does not count. The same N + 1 calls happen.

   Per-step time is the run's time / N; the ratio is executor / bare.
2. Throughput: 1,000 concurrent runs of the 5-step ``through-5`` function,
   sent in a few batched POSTs; runs/s = runs / (last ``ended_at`` - first
   ``received_at``). Every run must be Completed, one per event, with its
   own output, and every step body must have run exactly once.
3. Peak memory (VmHWM, reset through /proc/PID/clear_refs before the
   throughput part) and CPU time of the executor and of the app during the
   throughput part.
4. A PNG of per-step time against N at bench/results/executor_overhead.png.

    .venv/bin/python bench/executor_overhead.py           # full run
    .venv/bin/python bench/executor_overhead.py --quick   # a smaller one

Needs matplotlib (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from ulid import ULID

from devserver.testing import (
    ENDED,
    ServiceProcess,
    free_port,
    start_app,
    start_executor,
    wait_for_functions,
    wait_until,
)

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
APP_ID = "bench-overhead"
EVENT_KEY = "bench"
THROUGHPUT_FN = "through-5"
THROUGHPUT_STEPS = 5
# Headers the executor's caller sends (devserver/caller.py), so the app
# sees the same request either way.
CALL_HEADERS = {
    "content-type": "application/json",
    "x-inngest-server-kind": "dev",
    "x-inngest-req-version": "2",
    "user-agent": "digest-devserver/0.1",
}


# small helpers


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def instant_ms(text: str) -> float:
    """An RFC 3339 time of the REST API as Unix milliseconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def trimmed_mean(values: Sequence[float], cut: float = 0.2) -> float:
    """Mean without the lowest and highest ``cut`` share: robust to load
    spikes, and unlike the median it averages out the executor's 1 ms
    timestamp resolution."""
    ordered = sorted(values)
    k = int(len(ordered) * cut)
    kept = ordered[k : len(ordered) - k] or ordered
    return statistics.fmean(kept)


def step_url(runtime_url: str, step_id: str) -> str:
    parts = urlsplit(runtime_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "stepId"]
    query.append(("stepId", step_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


def send_events(
    client: httpx.Client, events: list[dict[str, Any]], batch: int
) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(events), batch):
        response = client.post(f"/e/{EVENT_KEY}", json=events[start : start + batch])
        response.raise_for_status()
        ids += response.json()["ids"]
    return ids


def event_runs(client: httpx.Client, event_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/events/{event_id}/runs")
    response.raise_for_status()
    runs: list[dict[str, Any]] = response.json()["data"]
    return runs


def received_at_ms(client: httpx.Client, event_id: str) -> float:
    response = client.get(f"/v1/events/{event_id}")
    response.raise_for_status()
    return instant_ms(response.json()["data"]["received_at"])


# the bare round trip


class BareDriver:
    """An executor that costs nothing: replays the memo straight to the app."""

    def __init__(self, runtime_urls: dict[str, str]) -> None:
        self._urls = runtime_urls
        self._client = httpx.Client(timeout=30, headers=CALL_HEADERS)

    def close(self) -> None:
        self._client.close()

    def run(self, fn: str, data: dict[str, Any]) -> tuple[float, int, Any]:
        """Drive one run to its 200: (seconds, calls made, output)."""
        url = step_url(self._urls[fn], "step")
        run_id = str(ULID())
        event = {
            "name": f"bench/{fn}",
            "data": data,
            "id": str(ULID()),
            "ts": time.time_ns() // 1_000_000,
            "user": {},
        }
        memo: dict[str, Any] = {}
        stack: list[str] = []
        calls = 0
        start = time.perf_counter()
        while True:
            body = {
                "event": event,
                "events": [event],
                "steps": memo,
                "ctx": {
                    "run_id": run_id,
                    "attempt": 0,
                    "max_attempts": 5,
                    "disable_immediate_execution": False,
                    "use_api": False,
                    "stack": {"stack": list(stack), "current": len(stack)},
                    "step_id": "step",
                    "env": "",
                },
                "use_api": False,
                "version": 2,
            }
            response = self._client.post(
                url,
                content=json.dumps(body).encode(),
                headers={"x-inngest-job-id": f"{run_id}-{calls}"},
            )
            calls += 1
            if response.status_code == 200:
                return time.perf_counter() - start, calls, response.json()
            if response.status_code != 206:
                raise RuntimeError(
                    f"bare call {calls} of {fn}: HTTP {response.status_code} "
                    f"{response.text[:300]}"
                )
            for op in response.json():
                if op.get("op") != "StepRun":
                    raise RuntimeError(f"bare call of {fn}: unexpected op {op!r:.300}")
                memo[op["id"]] = {"data": op.get("data")}
                stack.append(op["id"])


# through the executor


class ExecutorDriver:
    def __init__(self, url: str) -> None:
        self._client = httpx.Client(base_url=url, timeout=30)
        # Last run time per function: the first poll waits about that long,
        # so polling barely competes with the run for the CPU.
        self._expected: dict[str, float] = {}

    def close(self) -> None:
        self._client.close()

    def run(self, fn: str, data: dict[str, Any]) -> tuple[float, Any]:
        """One run, from event to end: (seconds by the executor's clock, output)."""
        (event_id,) = send_events(
            self._client, [{"name": f"bench/{fn}", "data": data}], 1
        )
        time.sleep(self._expected.get(fn, 0.0) * 0.8)
        deadline = time.monotonic() + 120
        while True:
            runs = event_runs(self._client, event_id)
            if runs and runs[0]["status"] in ENDED:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"run of {fn} for event {event_id} did not end")
            time.sleep(0.003)
        if len(runs) != 1 or runs[0]["status"] != "Completed":
            raise RuntimeError(f"run of {fn} ended badly: {runs!r:.500}")
        received = received_at_ms(self._client, event_id)
        seconds = (instant_ms(runs[0]["ended_at"]) - received) / 1000
        self._expected[fn] = seconds
        return seconds, runs[0].get("output")


# memory


def _status_kb(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5), 12 and 13 after ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class ProcessWatch:
    """Peak RSS and CPU time of some processes while a block runs.

    VmHWM is reset before the block when the kernel lets us; VmRSS is also
    sampled every 20 ms as a cross-check (and as the figure if it does not).
    """

    pids: dict[str, int]
    start_kb: dict[str, int] = field(default_factory=dict)
    sampled_kb: dict[str, int] = field(default_factory=dict)
    hwm_kb: dict[str, int | None] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    load: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        reset = {name: _reset_peak(pid) for name, pid in self.pids.items()}
        cpu_start = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        self.start_kb = {n: _status_kb(p, "VmRSS") for n, p in self.pids.items()}
        self.sampled_kb = dict(self.start_kb)
        stop = threading.Event()

        def sample() -> None:
            ticks = 0
            while not stop.wait(0.02):
                for name, pid in self.pids.items():
                    rss = _status_kb(pid, "VmRSS")
                    self.sampled_kb[name] = max(self.sampled_kb[name], rss)
                ticks += 1
                if ticks % 50 == 0:
                    self.load.append(load_average())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            for name, pid in self.pids.items():
                self.cpu_s[name] = _cpu_seconds(pid) - cpu_start[name]
                self.hwm_kb[name] = _status_kb(pid, "VmHWM") if reset[name] else None

    def peak_mib(self, name: str) -> float:
        hwm = self.hwm_kb.get(name)
        return max(hwm or 0, self.sampled_kb[name]) / 1024


# the parts


@dataclass
class ChainResult:
    steps: int
    bare_s: list[float]
    executor_s: list[float]

    @property
    def bare_ms_per_step(self) -> float:
        return trimmed_mean(self.bare_s) * 1000 / self.steps

    @property
    def executor_ms_per_step(self) -> float:
        return trimmed_mean(self.executor_s) * 1000 / self.steps

    @property
    def ratio(self) -> float:
        return self.executor_ms_per_step / self.bare_ms_per_step

    @property
    def paired_ratio(self) -> float:
        """Median of executor / bare over the pairs measured back to back:
        a cross-check that slow drifts of the machine's load cancel out."""
        return statistics.median(
            e / b for e, b in zip(self.executor_s, self.bare_s, strict=True)
        )


def reps_for(steps: int, quick: bool) -> int:
    if quick:
        return 5
    return max(8, min(40, 400 // steps))


def measure_chains(
    bare: BareDriver, through: ExecutorDriver, chains: Sequence[int], quick: bool
) -> list[ChainResult]:
    results = []
    for n in chains:
        fn = f"chain-{n}"
        # Warm-up: connections, imports on first use, SQLite pages.
        bare.run(fn, {"i": "warm"})
        through.run(fn, {"i": "warm"})
        result = ChainResult(n, [], [])
        for rep in range(reps_for(n, quick)):
            seconds, calls, output = bare.run(fn, {"i": f"bare-{rep}"})
            if calls != n + 1 or output != n:
                raise RuntimeError(f"bare {fn}: {calls} calls, output {output!r}")
            result.bare_s.append(seconds)
            seconds, output = through.run(fn, {"i": f"exec-{rep}"})
            if output != n:
                raise RuntimeError(f"executor {fn}: output {output!r}")
            result.executor_s.append(seconds)
        results.append(result)
        print(
            f"  chain-{n:<3} {len(result.bare_s):>3} runs each: "
            f"bare {result.bare_ms_per_step:6.2f} ms/step, "
            f"executor {result.executor_ms_per_step:6.2f} ms/step, "
            f"x{result.ratio:.2f}   (load {load_average()})",
            flush=True,
        )
    return results


@dataclass
class ThroughputResult:
    runs: int
    executor_s: float
    wall_s: float
    steps_total: int

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.executor_s


def measure_throughput(
    url: str, app_url: str, runs: int, batch: int
) -> ThroughputResult:
    with httpx.Client(base_url=url, timeout=60) as client:
        events = [
            {"name": f"bench/{THROUGHPUT_FN}", "data": {"i": i}} for i in range(runs)
        ]
        wall_start = time.perf_counter()
        ids = send_events(client, events, batch)
        # Poll only the last event until its run ends (runs progress about
        # in step, so it ends near the last), then sweep the others: little
        # polling while the runs are under way.
        wait_until(
            lambda: (r := event_runs(client, ids[-1])) and r[0]["status"] in ENDED,
            600,
            "the last throughput run to end",
            interval=0.25,
        )
        found: dict[int, list[dict[str, Any]]] = {}
        deadline = time.monotonic() + 600
        for index, event_id in enumerate(ids):
            while True:
                event_run_list = event_runs(client, event_id)
                if event_run_list and all(r["status"] in ENDED for r in event_run_list):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"throughput run of event {event_id} stuck")
                time.sleep(0.05)
            found[index] = event_run_list
        wall = time.perf_counter() - wall_start
        # All events of one POST share a received_at; the first POST's is first.
        first_received = received_at_ms(client, ids[0])
        last_ended = max(instant_ms(r["ended_at"]) for rs in found.values() for r in rs)
    problems = []
    run_ids = set()
    for index, event_run_list in found.items():
        if len(event_run_list) != 1:
            problems.append(f"event {index}: {len(event_run_list)} runs")
            continue
        (run,) = event_run_list
        run_ids.add(run["run_id"])
        if run["status"] != "Completed" or run.get("output") != index:
            problems.append(
                f"event {index}: {run['status']} output {run.get('output')!r:.100}"
            )
    counts = httpx.get(
        f"{app_url}/bench/counts", params={"fn": THROUGHPUT_FN}, timeout=10
    ).json()
    expected = runs * THROUGHPUT_STEPS
    if counts != {"total": expected, "distinct": expected, "max": 1}:
        problems.append(f"step bodies ran {counts}, expected {expected} once each")
    if len(run_ids) != runs:
        problems.append(f"{len(run_ids)} distinct runs for {runs} events")
    if problems:
        raise RuntimeError("throughput check failed:\n  " + "\n  ".join(problems[:20]))
    return ThroughputResult(
        runs, (last_ended - first_received) / 1000, wall, counts["total"]
    )


# the chart


def plot(results: Sequence[ChainResult], path: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r.steps for r in results]
    executor = [r.executor_ms_per_step for r in results]
    bare = [r.bare_ms_per_step for r in results]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    ax.plot(steps, executor, "o-", color="tab:red", label="through the executor")
    ax.plot(steps, bare, "s--", color="tab:blue", label="bare round trip (no executor)")
    for n, e, b in zip(steps, executor, bare, strict=True):
        ax.annotate(
            f"x{e / b:.2f}",
            (n, e),
            textcoords="offset points",
            xytext=(0, 10),
            ha="center",
            fontsize=9,
            color="tab:red",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"},
        )
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(steps)
    ax.set_xticklabels([str(n) for n in steps])
    ax.set_ylim(0, max(executor) * 1.2)
    ax.set_xlabel("steps in the function (sequential no-op step.run)")
    ax.set_ylabel("time per step (ms)")
    ax.set_title(
        "Per-step time, executor vs bare SDK round trip\n" + subtitle, fontsize=10
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# main


def registered_urls(url: str) -> dict[str, str]:
    """Function name (without the app prefix) -> its registered runtime URL."""
    body = httpx.get(f"{url}/dev", timeout=10).json()
    prefix = APP_ID + "-"
    return {
        f["slug"].removeprefix(prefix): f["url"]
        for f in body["functions"]
        if f["slug"].startswith(prefix)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument(
        "--chains",
        default=None,
        help="comma-separated step counts (default 1,2,5,10,20,50; quick 1,5,20)",
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="throughput runs (default 1000)"
    )
    parser.add_argument(
        "--batch", type=int, default=250, help="events per POST in the throughput part"
    )
    parser.add_argument("--png", type=Path, default=RESULTS / "executor_overhead.png")
    args = parser.parse_args()
    chains = [
        int(n)
        for n in (args.chains or ("1,5,20" if args.quick else "1,2,5,10,20,50")).split(
            ","
        )
    ]
    runs = args.runs or (200 if args.quick else 1000)

    loads = [load_average()]
    print(f"cores {os.cpu_count()}, load average at start {loads[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        root = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        app = start_app(
            "bench_app:app",
            cwd=BENCH_DIR,
            log_dir=root,
            env={"EXECUTOR_URL": url, "BENCH_CHAINS": ",".join(map(str, chains))},
        )
        executor: ServiceProcess | None = None
        try:
            executor = start_executor(
                root / "data",
                [app.extras["serve_url"]],
                port=port,
                retry_interval=0.2,
            )
            wanted = [f"{APP_ID}-chain-{n}" for n in chains]
            wait_for_functions(url, [*wanted, f"{APP_ID}-{THROUGHPUT_FN}"])
            urls = registered_urls(url)

            print("per-step time (bare and executor interleaved, run by run):")
            bare = BareDriver(urls)
            through = ExecutorDriver(url)
            try:
                chain_results = measure_chains(bare, through, chains, args.quick)
            finally:
                bare.close()
                through.close()
            loads.append(load_average())

            print(
                f"throughput: {runs} concurrent runs of {THROUGHPUT_FN} ...", flush=True
            )
            memory = ProcessWatch({"executor": executor.pid, "app": app.pid})
            with memory.watch():
                throughput = measure_throughput(url, app.url, runs, args.batch)
            loads += [*memory.load, load_average()]
        except BaseException:
            for service in (executor, app):
                if service is not None:
                    print(f"--- {service.log_path.name} (tail)", file=sys.stderr)
                    print(service.log()[-3000:], file=sys.stderr)
            raise
        finally:
            if executor is not None:
                executor.stop()
            app.stop()

    print()
    print(
        "steps  runs  bare ms/step  executor ms/step  ratio  "
        "paired ratio  overhead ms/step"
    )
    for r in chain_results:
        print(
            f"{r.steps:>5}  {len(r.bare_s):>4}  {r.bare_ms_per_step:12.2f}  "
            f"{r.executor_ms_per_step:16.2f}  {r.ratio:5.2f}  {r.paired_ratio:12.2f}"
            f"  {r.executor_ms_per_step - r.bare_ms_per_step:16.2f}"
        )
    print(
        "(20%-trimmed means; executor: event received to run ended by its own "
        "clock; ratio = executor / bare; paired: median of back-to-back ratios)"
    )
    t = throughput
    calls_per_s = t.runs * (THROUGHPUT_STEPS + 1) / t.executor_s
    print()
    print(
        f"throughput: {t.runs} runs of {THROUGHPUT_STEPS} steps in "
        f"{t.executor_s:.2f} s (executor clock, first event received to last "
        f"run ended): {t.runs_per_s:.1f} runs/s, {calls_per_s:.0f} calls/s; "
        f"wall clock with polling {t.wall_s:.2f} s"
    )
    print(
        f"  all {t.runs} runs Completed, one run per event, "
        f"{t.steps_total} step bodies each ran once"
    )
    for name in ("executor", "app"):
        hwm = memory.hwm_kb[name]
        how = "VmHWM reset before the part" if hwm is not None else "sampled VmRSS"
        print(
            f"peak RSS {name:<8} {memory.peak_mib(name):7.1f} MiB during the "
            f"throughput part ({how}; {memory.start_kb[name] / 1024:.1f} MiB "
            f"before); CPU {memory.cpu_s[name]:.1f} s in it"
        )
    one_minute = [float(x.split()[0]) for x in loads]
    print(
        f"load average, 1 min: {one_minute[0]:.2f} at start, "
        f"{min(one_minute):.2f}-{max(one_minute):.2f} during, "
        f"{one_minute[-1]:.2f} at end (1/5/15 min at end: {loads[-1]})"
    )
    subtitle = (
        f"{datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores, "
        f"load average {min(one_minute):.1f}-{max(one_minute):.1f}; "
        f"labels: executor / bare"
    )
    plot(chain_results, args.png, subtitle)
    raw = args.png.with_suffix(".json")
    raw.write_text(
        json.dumps(
            {
                "load_average": loads,
                "chains": [
                    {"steps": r.steps, "bare_s": r.bare_s, "executor_s": r.executor_s}
                    for r in chain_results
                ],
                "throughput": {
                    "runs": t.runs,
                    "steps": THROUGHPUT_STEPS,
                    "executor_s": t.executor_s,
                    "wall_s": t.wall_s,
                },
                "memory_mib": {n: memory.peak_mib(n) for n in memory.pids},
                "cpu_s": memory.cpu_s,
            },
            indent=1,
        )
    )
    print(f"chart: {args.png} (raw figures: {raw.name})")


if __name__ == "__main__":
    main()
