"""One log line per failed attempt, with everything needed to find it again."""

from __future__ import annotations

from typing import Any

from devserver.logtext import get_logger

logger = get_logger("digest.devserver.attempts")

# What an app raises on purpose to refuse or put off the work (the SDK's
# NonRetriableError and RetryAfterError): an expected outcome, which its
# message explains; the traceback would only bury it in the log.
DELIBERATE = frozenset({"NonRetriableError", "RetryAfterError"})


def attempt_failed(
    *,
    run_id: str,
    fn_id: str,
    step: str,
    attempt: int,
    max_attempts: int,
    error: dict[str, Any],
    outcome: str,
) -> None:
    """Log a failed attempt on a single line.

    The traceback the SDK reported is folded into the same line (newlines
    written as ``\\n``) so that one grep finds the run, the step and the cause
    together; the full error also stays on the run and its step record. A
    deliberate refusal (``DELIBERATE``) is logged without it.
    """
    stack = None if error.get("name") in DELIBERATE else error.get("stack")
    folded = str(stack).strip().replace("\n", "\\n") if stack else "-"
    logger.warning(
        "attempt failed: run=%s function=%s step=%s attempt=%d/%d "
        "error=%s message=%r outcome=%s traceback=%s",
        run_id,
        fn_id,
        step,
        attempt,
        max_attempts,
        error.get("name", "Error"),
        error.get("message", ""),
        outcome,
        folded,
    )
