"""`step.ai.infer`: the executor makes the model request for the function.

`MODEL_URL` is the base URL of an OpenAI-compatible stand-in started by the
test, `MODEL_KEY` the key to send. The function returns the answer's text,
or the StepError it got when the request failed for good.
"""

from __future__ import annotations

import os

import fastapi
import inngest
import inngest.fast_api
from inngest.experimental.ai import openai

from apps.common import client_for, mark

client = client_for("ai_infer")


@client.create_function(
    fn_id="ask", trigger=inngest.TriggerEvent(event="ai_infer/ask"), retries=2
)
async def ask(ctx: inngest.Context) -> dict[str, object]:
    key = str(ctx.event.data["key"])
    adapter = openai.Adapter(
        auth_key=os.environ["MODEL_KEY"],
        base_url=os.environ["MODEL_URL"],
        model="stand-in-model",
    )
    body = {
        "messages": [
            {"role": "user", "content": "<document>Two plus two. Is four.</document>"}
        ]
    }
    try:
        answer = await ctx.step.ai.infer("infer", adapter=adapter, body=body)
    except inngest.StepError as exc:
        mark(key, "failed")
        return {"error": exc.name, "message": exc.message}

    async def after() -> str:
        mark(key, "after")
        return "done"

    await ctx.step.run("after", after)
    choices = answer["choices"]
    assert isinstance(choices, list)
    return {"text": choices[0]["message"]["content"]}


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [ask])
