"""Which functions an event starts: trigger names and CEL expressions."""

from __future__ import annotations

import functools
from typing import Any

import celpy
from celpy.adapter import json_to_cel

from devserver.logtext import get_logger

logger = get_logger("digest.devserver.triggers")


def name_matches(pattern: str, name: str) -> bool:
    """Exact match, or a wildcard trigger such as ``app/*`` or ``app.*``."""
    if pattern == name:
        return True
    if pattern.endswith(("/*", ".*")):
        return name.startswith(pattern[:-1])
    return pattern == "*"


@functools.lru_cache(maxsize=512)
def _program(expression: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(expression))


def expression_true(expression: str, variables: dict[str, Any]) -> bool:
    """Evaluate a CEL filter; any error counts as false (fail closed)."""
    try:
        activation = {k: json_to_cel(v) for k, v in variables.items()}
        # celpy may hand back an error as a value instead of raising it.
        result: object = _program(expression).evaluate(activation)
    except Exception as exc:  # celpy raises a variety of parse/eval errors
        logger.warning("expression %r could not be evaluated: %s", expression, exc)
        return False
    if isinstance(result, Exception):
        logger.warning("expression %r could not be evaluated: %s", expression, result)
        return False
    return bool(result)


def function_matches(config: dict[str, Any], event: dict[str, Any]) -> bool:
    """True when one of the function's event triggers accepts the event."""
    for trigger in config.get("triggers") or []:
        pattern = trigger.get("event") if isinstance(trigger, dict) else None
        if not isinstance(pattern, str) or not name_matches(pattern, event["name"]):
            continue
        expression = trigger.get("expression")
        if not expression or expression_true(expression, {"event": event}):
            return True
    return False
