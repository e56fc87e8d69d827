"""The SDK app that bench/executor_overhead.py drives, served by the official SDK.

Started by uvicorn in a subprocess (``bench_app:app`` with ``bench/`` as the
working directory). Environment: ``EXECUTOR_URL`` (where the executor
listens) and ``BENCH_CHAINS`` (comma-separated step counts, default
``1,2,5,10,20,50``).

Functions:

- ``chain-N`` (event ``bench/chain-N``): N sequential ``step.run`` calls whose
  bodies do nothing; returns N.
- ``through-5`` (event ``bench/through-5``): 5 no-op steps; returns the
  event's ``data.i``, so the benchmark can match each run to its event.

Every step body that runs is counted in memory per (function, event
``data.i``, step), and ``GET /bench/counts`` reports the counts, so the
benchmark can check that no step ran twice.
"""

from __future__ import annotations

import collections
import os
from typing import Any

import fastapi
import inngest
import inngest.fast_api

EXECUTOR_URL = os.environ["EXECUTOR_URL"]
CHAINS = [int(n) for n in os.environ.get("BENCH_CHAINS", "1,2,5,10,20,50").split(",")]
THROUGHPUT_STEPS = 5

client = inngest.Inngest(
    app_id="bench-overhead",
    is_production=False,
    api_base_url=EXECUTOR_URL,
    event_api_base_url=EXECUTOR_URL,
)

# (function, event data.i, step index) -> how many times the body ran.
_runs: collections.Counter[tuple[str, object, int]] = collections.Counter()


def _counted(fn: str, key: object, index: int) -> Any:
    async def body() -> None:
        _runs[(fn, key, index)] += 1

    return body


def _chain(n: int) -> inngest.Function[Any]:
    fn_name = f"chain-{n}"

    @client.create_function(
        fn_id=fn_name, trigger=inngest.TriggerEvent(event=f"bench/{fn_name}")
    )
    async def chain(ctx: inngest.Context) -> int:
        key = ctx.event.data.get("i")
        for i in range(n):
            await ctx.step.run(f"s{i}", _counted(fn_name, key, i))
        return n

    return chain


@client.create_function(
    fn_id="through-5", trigger=inngest.TriggerEvent(event="bench/through-5")
)
async def through(ctx: inngest.Context) -> object:
    key = ctx.event.data.get("i")
    for i in range(THROUGHPUT_STEPS):
        await ctx.step.run(f"s{i}", _counted("through-5", key, i))
    return key


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [*(_chain(n) for n in CHAINS), through])


@app.get("/bench/counts")
async def counts(fn: str) -> dict[str, int]:
    """How many step bodies of ``fn`` ran: in all, distinct, most for one."""
    mine = [c for (name, _, _), c in _runs.items() if name == fn]
    return {
        "total": sum(mine),
        "distinct": len(mine),
        "max": max(mine, default=0),
    }
