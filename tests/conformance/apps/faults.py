"""An app that misbehaves on purpose, plus one well-behaved SDK function.

`/fake/{mode}` answers calls the way a broken app, a proxy or a tunnel
would; the tests register functions pointing there with `/fn/register`.
Each mode counts its calls per run so an answer can change over time.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import fastapi
import inngest
import inngest.fast_api
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from apps.common import client_for

client = client_for("faults")
SDK_HEADERS = {"x-inngest-sdk": "inngest-py:v0.5.19", "x-inngest-req-version": "2"}
# Calls per (mode, run id).
calls: Counter[tuple[str, str]] = Counter()


@client.create_function(
    fn_id="healthy", trigger=inngest.TriggerEvent(event="faults/healthy"), retries=0
)
async def healthy(ctx: inngest.Context) -> str:
    return "still fine"


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [healthy])


def _done(hits: int) -> Response:
    return JSONResponse({"hits": hits}, headers=SDK_HEADERS)


@app.post("/fake/{mode}")
async def fake(mode: str, request: fastapi.Request) -> Response:
    body: dict[str, Any] = json.loads(await request.body())
    run_id = str(body["ctx"]["run_id"])
    calls[(mode, run_id)] += 1
    hits = calls[(mode, run_id)]
    if mode == "html":
        return HTMLResponse("<html><body>Tunnel warning: click to continue</body>")
    if mode == "badjson":
        return Response("{not json", status_code=206, headers=SDK_HEADERS)
    if mode == "opcode":
        op = {"id": "abc", "op": "Teleport", "name": "x", "data": None}
        return JSONResponse([op], status_code=206, headers=SDK_HEADERS)
    if mode == "5xx":
        return PlainTextResponse("bad gateway", status_code=502)
    if mode == "slow":
        await asyncio.sleep(3)
        return _done(hits)
    if mode == "ratelimited" and hits == 1:
        return PlainTextResponse(
            "slow down", status_code=429, headers={"Retry-After": "1"}
        )
    if mode == "gone" and hits <= 3:
        return PlainTextResponse("tunnel not found", status_code=404)
    return _done(hits)


@app.get("/fake/calls/{mode}")
async def count(mode: str) -> dict[str, int]:
    return {run: n for (m, run), n in calls.items() if m == mode}
