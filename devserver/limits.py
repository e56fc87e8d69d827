"""Size and step limits of a run, as on the official server (protocol 4.6.1).

Going over a limit is the function's problem, not a transient fault: the run
fails at once with an error that names the step and the limit, and is not
retried (a retry would produce the same output again).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from devserver import wire
from devserver.store import Run

MIB = 1024 * 1024
MAX_OP_BYTES = 4 * MIB
MAX_STATE_BYTES = 32 * MIB
MAX_STEPS = 1000


def json_size(value: Any) -> int:
    """Bytes of the compact JSON form, the form the executor stores and sends."""
    return len(json.dumps(value, separators=(",", ":")).encode())


def _too_large(message: str) -> dict[str, Any]:
    error = wire.error_object("OutputTooLargeError", message)
    error["code"] = "output_too_large"
    return error


def oversized_op(ops: Iterable[wire.Op]) -> tuple[wire.Op, dict[str, Any]] | None:
    """The first op carrying data or an error over the per-step limit."""
    for op in ops:
        for what, value in (("output", op.data), ("error", op.error)):
            if value is None:
                continue
            size = json_size(value)
            if size > MAX_OP_BYTES:
                return op, _too_large(
                    f"step {op.display_name!r} {what} is {size} bytes, over the "
                    f"limit of 4 MiB ({MAX_OP_BYTES} bytes) per step"
                )
    return None


def oversized_output(output: Any) -> dict[str, Any] | None:
    """An error if a function's return value is over the per-step limit."""
    size = json_size(output)
    if size <= MAX_OP_BYTES:
        return None
    return _too_large(
        f"function output is {size} bytes, over the limit of 4 MiB "
        f"({MAX_OP_BYTES} bytes)"
    )


def run_over_limits(run: Run, last_step: str) -> dict[str, Any] | None:
    """An error if the run now has too many steps or too much memoised state."""
    steps = len(run.memo.keys() | run.pending.keys())
    if steps > MAX_STEPS:
        error = wire.error_object(
            "StepLimitError",
            f"run has {steps} steps, over the limit of {MAX_STEPS} steps per run "
            f"(reached at step {last_step!r})",
        )
        error["code"] = "step_limit"
        return error
    size = json_size(run.memo)
    if size > MAX_STATE_BYTES:
        error = wire.error_object(
            "StateTooLargeError",
            f"run state is {size} bytes after step {last_step!r}, over the limit "
            f"of 32 MiB ({MAX_STATE_BYTES} bytes) per run",
        )
        error["code"] = "state_too_large"
        return error
    return None
