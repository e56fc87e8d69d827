"""The concurrency gate: which queued calls may be sent now (protocol 6.3).

A concurrency limit counts calls in flight, not runs: a sleeping or
waiting run holds nothing, and a call that fails (for example because the
app died mid-step) gives its slot back when it returns, so the next run
for that key can go while the failed step waits for its retry. Counts live
in memory only; at start-up nothing is in flight, because every lease of
the previous process is released.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from devserver import wire
from devserver.flow.expr import key_value
from devserver.flow.state import FlowState
from devserver.logtext import get_logger
from devserver.store import QueueItem, Store

logger = get_logger("digest.devserver.flow.concurrency")

# Limits of a run are computed once and cached; past this many cached runs
# the cache is dropped and rebuilt on demand, which bounds memory.
_CACHE_MAX = 20_000

Slot = tuple[str, int]  # (concurrency key, limit)


def run_slots(function: dict[str, Any], event: dict[str, Any]) -> tuple[Slot, ...]:
    """The concurrency keys a run of ``function`` occupies, with their limits.

    ``fn`` scope counts per function (and key value); ``env`` and
    ``account`` scopes count across functions that use the same key
    expression, which is how the official server shares them. This server
    has a single environment, so the two are the same.
    """
    slots: list[Slot] = []
    for entry in function.get("concurrency") or []:
        if not isinstance(entry, dict):
            continue
        limit = entry.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            continue
        expression = entry.get("key")
        value = key_value(expression, event)
        scope = entry.get("scope") or "fn"
        if scope in ("env", "account") and expression:
            slots.append((f"env\x00{expression}\x00{value}", limit))
        else:
            slots.append((f"fn\x00{function['id']}\x00{value}", limit))
    return tuple(slots)


class ConcurrencyGate:
    def __init__(self, store: Store, state: FlowState) -> None:
        self._store = store
        self._state = state
        self._in_flight: Counter[str] = Counter()
        self._held: dict[int, tuple[Slot, ...]] = {}
        self._slots: dict[str, tuple[Slot, ...]] = {}

    def lease(self, now: int, limit: int, skip_runs: set[str]) -> list[QueueItem]:
        """Lease up to ``limit`` due items whose run has a free slot.

        Items are considered in queue order (due time, then arrival), and a
        blocked item does not block the items behind it that belong to
        other keys, so one saturated function cannot starve the others.
        ``skip_runs`` have a discovery call in flight; their next discovery
        waits, as in ``Store.lease_due``.
        """
        picked: list[QueueItem] = []
        if limit <= 0:
            return picked
        taken: Counter[str] = Counter()
        due = self._state.due_items(now)
        try:
            for item in due:
                if item.step_id == wire.DISCOVERY and item.run_id in skip_runs:
                    continue
                slots = self._run_slots(item) if item.kind == "call" else ()
                if any(self._in_flight[key] + taken[key] >= cap for key, cap in slots):
                    continue
                for key, _ in slots:
                    taken[key] += 1
                if slots:
                    self._held[item.item_id] = slots
                picked.append(item)
                if len(picked) == limit:
                    break
        finally:
            # Ends the queue read before the picked items are leased.
            due.close()
        self._state.mark_leased([i.item_id for i in picked])
        self._in_flight.update(taken)
        return picked

    def release(self, item: QueueItem) -> None:
        """The call of ``item`` is over (answered, failed or cut short)."""
        for key, _ in self._held.pop(item.item_id, ()):
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]

    def _run_slots(self, item: QueueItem) -> tuple[Slot, ...]:
        cached = self._slots.get(item.run_id)
        if cached is not None:
            return cached
        run = self._store.get_run(item.run_id)
        function = None if run is None else self._store.get_function(run.fn_id)
        slots = (
            () if run is None or function is None else run_slots(function, run.event)
        )
        if len(self._slots) >= _CACHE_MAX:
            self._slots.clear()
        self._slots[item.run_id] = slots
        return slots
