"""An SDK app in cloud mode, for the signing tests.

Unlike the other apps it runs with `is_production=True`: the SDK then
checks the executor's signatures, signs its answers, sends a bearer on
`/fn/register` and needs an event key. Keys come from the environment the
test gives it (`INNGEST_SIGNING_KEY`, `INNGEST_SIGNING_KEY_FALLBACK`,
`INNGEST_EVENT_KEY`), as in a deployed app.
"""

from __future__ import annotations

from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import EXECUTOR_URL, mark

client = inngest.Inngest(
    app_id="signing",
    is_production=True,
    api_base_url=EXECUTOR_URL,
    event_api_base_url=EXECUTOR_URL,
)


@client.create_function(
    fn_id="steps", trigger=inngest.TriggerEvent(event="signing/steps"), retries=1
)
async def steps(ctx: inngest.Context) -> dict[str, Any]:
    key = ctx.event.data["key"]

    async def first() -> int:
        mark(key, "first")
        return 1

    async def second(value: int) -> int:
        mark(key, "second")
        return value + 1

    one = await ctx.step.run("first", first)
    two = await ctx.step.run("second", second, one)
    # The SDK posts this to /e/{INNGEST_EVENT_KEY}: the event key check is
    # exercised from inside a run too.
    sent = await ctx.step.send_event(
        "notify", inngest.Event(name="signing/done", data={"key": key})
    )
    return {"one": one, "two": two, "sent": len(sent)}


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [steps])
