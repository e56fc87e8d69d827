"""Fault injection for tests: make named steps fail their first attempts.

`DIGEST_FAULTS="summarize-chunk-0=2,save=99"` makes the step
`summarize-chunk-0` fail on attempts 0 and 1 and `save` fail on every
attempt. Unset (the default) it does nothing. It exists so that the retry
and failure paths of the real pipeline can be proved end to end.
"""

from __future__ import annotations

import os


class InjectedFault(RuntimeError):
    pass


def _parse(spec: str) -> dict[str, int]:
    faults: dict[str, int] = {}
    for part in spec.split(","):
        name, _, count = part.strip().partition("=")
        if name and count.strip().isdigit():
            faults[name] = int(count)
    return faults


def check_fault(step: str, attempt: int) -> None:
    spec = os.environ.get("DIGEST_FAULTS", "")
    if not spec:
        return
    failing = _parse(spec).get(step, 0)
    if attempt < failing:
        raise InjectedFault(
            f"injected fault in step '{step}' on attempt {attempt + 1} "
            f"(DIGEST_FAULTS makes its first {failing} attempt(s) fail)"
        )
