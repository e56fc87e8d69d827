"""Debounce: a 5 s period (far longer than the 900 ms gaps), a 10 s timeout."""

from __future__ import annotations

import datetime
from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for

client = client_for("flow_debounce")


@client.create_function(
    fn_id="debounced",
    trigger=inngest.TriggerEvent(event="flow_debounce/tick"),
    debounce=inngest.Debounce(
        period=datetime.timedelta(seconds=5),
        timeout=datetime.timedelta(seconds=10),
        key="event.data.key",
    ),
    retries=0,
)
async def debounced(ctx: inngest.Context) -> dict[str, Any]:
    return {"seq": ctx.event.data["seq"], "events": len(ctx.events)}


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [debounced])
