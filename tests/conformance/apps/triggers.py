"""Trigger matching: expressions, wildcards, several triggers, cron-free."""

from __future__ import annotations

from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for

client = client_for("triggers")


def _echo(ctx: inngest.Context) -> dict[str, Any]:
    return {"name": ctx.event.name, "data": dict(ctx.event.data)}


@client.create_function(
    fn_id="filtered",
    trigger=inngest.TriggerEvent(
        event="triggers/filtered", expression="event.data.n > 1"
    ),
    retries=0,
)
async def filtered(ctx: inngest.Context) -> dict[str, Any]:
    return _echo(ctx)


@client.create_function(
    fn_id="wild-slash", trigger=inngest.TriggerEvent(event="triggers/wild/*"), retries=0
)
async def wild_slash(ctx: inngest.Context) -> dict[str, Any]:
    return _echo(ctx)


@client.create_function(
    fn_id="wild-dot", trigger=inngest.TriggerEvent(event="triggers.dot.*"), retries=0
)
async def wild_dot(ctx: inngest.Context) -> dict[str, Any]:
    return _echo(ctx)


@client.create_function(
    fn_id="multi",
    trigger=[
        inngest.TriggerEvent(event="triggers/first"),
        inngest.TriggerEvent(event="triggers/second", expression="event.data.ok"),
    ],
    retries=0,
)
async def multi(ctx: inngest.Context) -> dict[str, Any]:
    return _echo(ctx)


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [filtered, wild_slash, wild_dot, multi])
