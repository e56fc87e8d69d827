"""Not an SDK: an app whose answers are signed badly, on purpose.

The signing tests register its functions by hand. Each function id picks
how its answer is signed (the function `forger-<mode>`):

* `good`: correctly, with `FORGER_KEY` (the executor's key), as the SDK does;
* `forged`: with another key;
* `stale`: correctly but with a timestamp ten minutes old;
* `unsigned`: no `x-inngest-signature` at all.

It signs with plain `hmac` rather than the executor's code so that a bug
there cannot cancel out in the test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time

import fastapi
from fastapi import Request, Response

KEY = os.environ["FORGER_KEY"]
OTHER_KEY = "signkey-test-" + "ab" * 32


def _sign(body: bytes, key: str, t: int) -> str:
    stripped = re.sub(r"^signkey-\w+-", "", key)
    mac = hmac.new(stripped.encode(), body + str(t).encode(), hashlib.sha256)
    return f"t={t}&s={mac.hexdigest()}"


app = fastapi.FastAPI()


@app.get("/api/inngest")
async def introspect() -> dict[str, str]:
    return {"mode": "forger"}


@app.post("/api/inngest")
async def call(request: Request) -> Response:
    mode = request.query_params.get("fnId", "").removeprefix("forger-")
    body = json.dumps({"mode": mode}).encode()
    headers = {"x-inngest-sdk": "forger:v0", "content-type": "application/json"}
    now = round(time.time())
    if mode == "good":
        headers["x-inngest-signature"] = _sign(body, KEY, now)
    elif mode == "forged":
        headers["x-inngest-signature"] = _sign(body, OTHER_KEY, now)
    elif mode == "stale":
        headers["x-inngest-signature"] = _sign(body, KEY, now - 600)
    return Response(body, status_code=200, headers=headers)
