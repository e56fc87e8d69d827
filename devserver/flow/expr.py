"""CEL key and priority expressions evaluated on an event (protocol 6.1)."""

from __future__ import annotations

import functools
import json
from typing import Any

import celpy
from celpy.adapter import json_to_cel

from devserver.logtext import get_logger

logger = get_logger("digest.devserver.flow")

# The official server clamps priority factors to twelve hours either way.
MAX_PRIORITY_S = 43_200


@functools.lru_cache(maxsize=512)
def _program(expression: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(expression))


def _evaluate(expression: str, event: dict[str, Any]) -> object:
    result: object = _program(expression).evaluate({"event": json_to_cel(event)})
    # celpy may hand back an error as a value instead of raising it.
    if isinstance(result, Exception):
        raise result
    return result


def key_value(expression: str | None, event: dict[str, Any]) -> str:
    """The group a key expression puts an event in; ``""`` without a key.

    Strings group by their text and other values by their JSON form, so
    ``event.data.user_id`` gives one group per user whether ids are numbers
    or strings. An expression that cannot be evaluated (for example a
    missing field) puts the event in the ``""`` group and is logged, so a
    bad key degrades to an unkeyed limit instead of losing the event.
    """
    if not expression:
        return ""
    try:
        value = _evaluate(expression, event)
    except Exception as exc:  # celpy raises a variety of parse/eval errors
        logger.warning("key expression %r could not be evaluated: %s", expression, exc)
        return ""
    if isinstance(value, str):
        return str(value)
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))


def priority_s(expression: str | None, event: dict[str, Any]) -> int:
    """``priority.run`` in seconds, clamped; 0 when absent or unreadable."""
    if not expression:
        return 0
    try:
        value = _evaluate(expression, event)
    except Exception as exc:  # celpy raises a variety of parse/eval errors
        logger.warning("priority %r could not be evaluated: %s", expression, exc)
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        logger.warning("priority %r gave %r, not a number; using 0", expression, value)
        return 0
    return max(-MAX_PRIORITY_S, min(MAX_PRIORITY_S, int(value)))


def _plain(value: object) -> object:
    """celpy values as plain JSON-able Python values."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
