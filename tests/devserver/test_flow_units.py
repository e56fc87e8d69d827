"""Flow control and cron in-process: fake clocks, a real SQLite store."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ulid import ULID

from devserver import cron, retry, wire
from devserver import events as ev
from devserver.config import ExecutorConfig
from devserver.executor import Executor
from devserver.flow.admission import Admission
from devserver.flow.concurrency import ConcurrencyGate, run_slots
from devserver.flow.expr import MAX_PRIORITY_S, key_value, priority_s
from devserver.flow.limits import rate_allows, throttle_slot
from devserver.flow.state import FlowState
from devserver.store import Run, Store

MINUTE = 60_000


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


class Clock:
    def __init__(self, start: int) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


# cron


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Paris goes from UTC+1 to UTC+2 on Sunday 30 March 2025.
        (
            "2025-03-28T12:00:00",
            ["2025-03-29T08:00:00Z", "2025-03-30T07:00:00Z", "2025-03-31T07:00:00Z"],
        ),
        # ... and back to UTC+1 on Sunday 26 October 2025.
        (
            "2025-10-24T12:00:00",
            ["2025-10-25T07:00:00Z", "2025-10-26T08:00:00Z", "2025-10-27T08:00:00Z"],
        ),
    ],
)
def test_cron_follows_local_time_across_daylight_saving(
    start: str, expected: list[str]
) -> None:
    for prefix in ("TZ", "CRON_TZ"):
        schedule = cron.parse(f"{prefix}=Europe/Paris 0 9 * * *")
        at = ms(start)
        fired = []
        for _ in expected:
            at = cron.next_fire_ms(schedule, at)
            fired.append(cron.rfc3339(at))
        assert fired == expected


def test_cron_without_zone_is_utc_and_descriptors_work() -> None:
    assert cron.rfc3339(
        cron.next_fire_ms(cron.parse("0 9 * * *"), ms("2025-03-29T10:00:00"))
    ) == ("2025-03-30T09:00:00Z")
    assert cron.next_fire_ms(cron.parse("@daily"), ms("2025-03-29T10:00:00")) == ms(
        "2025-03-30T00:00:00"
    )
    assert cron.next_fire_ms(cron.parse("@every 90s"), 1_000) == 91_000


@pytest.mark.parametrize(
    "bad", ["", "* * * *", "* * * * * *", "61 * * * *", "TZ=Nowhere/City * * * * *"]
)
def test_invalid_cron_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies
        cron.parse(bad)


def _cron_function(expression: str, fn_id: str = "app-cron") -> dict[str, Any]:
    return {"id": fn_id, "triggers": [{"cron": expression}]}


def test_scheduler_fires_once_per_local_morning_across_dst() -> None:
    clock = Clock(ms("2025-03-28T00:00:00"))
    fired: list[dict[str, Any]] = []
    functions = [_cron_function("TZ=Europe/Paris 0 9 * * *")]
    scheduler = cron.CronScheduler(
        lambda: functions, lambda f, item: fired.append(item.event), clock
    )
    # A tick every minute (with some slack) for four days.
    while clock.now < ms("2025-04-01T00:00:00"):
        scheduler.tick()
        clock.now += MINUTE + 7_000
    assert [e["data"]["scheduledAt"] for e in fired] == [
        "2025-03-28T08:00:00Z",
        "2025-03-29T08:00:00Z",
        "2025-03-30T07:00:00Z",
        "2025-03-31T07:00:00Z",
    ]
    event = fired[0]
    assert event["name"] == "inngest/scheduled.timer"
    assert event["id"] == "2025-03-28T08:00:00Z"
    assert event["data"]["cron"] == "TZ=Europe/Paris 0 9 * * *"
    assert event["ts"] >= ms("2025-03-28T08:00:00")
    assert event["data"]["fireAt"] == cron.rfc3339(event["ts"])


def test_scheduler_after_restart_fires_at_next_tick_without_backfill() -> None:
    functions = [_cron_function("0 9 * * *")]
    fired: list[str] = []

    def scheduler(clock: Clock) -> cron.CronScheduler:
        return cron.CronScheduler(
            lambda: functions,
            lambda f, item: fired.append(item.event["data"]["scheduledAt"]),
            clock,
        )

    before = Clock(ms("2025-05-01T08:59:00"))
    scheduler(before).tick()  # armed for 09:00; the process then dies
    # Down from 08:59 to 09:30 on the 1st: the 09:00 tick is not replayed.
    after = Clock(ms("2025-05-01T09:30:00"))
    restarted = scheduler(after)
    restarted.tick()
    assert fired == []
    after.now = ms("2025-05-02T09:00:00")
    restarted.tick()
    assert fired == ["2025-05-02T09:00:00Z"]
    restarted.tick()
    assert fired == ["2025-05-02T09:00:00Z"]


def test_scheduler_rearms_when_a_resync_changes_the_schedule() -> None:
    clock = Clock(ms("2025-05-01T08:00:00"))
    functions = [_cron_function("0 9 * * *")]
    fired: list[str] = []
    scheduler = cron.CronScheduler(
        lambda: functions,
        lambda f, item: fired.append(item.event["data"]["cron"]),
        clock,
    )
    scheduler.tick()
    functions[0] = _cron_function("30 8 * * *")
    scheduler.tick()
    assert scheduler.next_due() == ms("2025-05-01T08:30:00")
    clock.now = ms("2025-05-01T09:00:00")
    scheduler.tick()
    assert fired == ["30 8 * * *"]
    functions.clear()
    scheduler.tick()
    assert scheduler.next_due() is None


def test_accelerated_clock_runs_sixty_times_faster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = Clock(ms("2025-05-01T00:00:00"))
    monkeypatch.setattr(cron, "now_ms", real)
    clock = cron.accelerated_clock(1.0)
    first = clock()
    real.now += 1_000
    # One real second is one cron minute, and the clock does not depend on
    # when it was created (a restarted executor goes on where it was).
    assert clock() - first == MINUTE
    assert cron.accelerated_clock(1.0)() == clock()


# throttle, rate limit, priority, keys


def test_throttle_spaces_starts_and_never_refuses() -> None:
    tat = None
    starts = []
    for _ in range(4):
        slot = throttle_slot(tat, 0, period_ms=2_000, limit=1, burst=1)
        starts.append(slot.start_at)
        tat = slot.tat
    assert starts == [0, 2_000, 4_000, 6_000]


def test_throttle_burst_lets_several_start_at_once() -> None:
    tat = None
    starts = []
    for _ in range(5):
        slot = throttle_slot(tat, 0, period_ms=3_000, limit=3, burst=3)
        starts.append(slot.start_at)
        tat = slot.tat
    assert starts == [0, 0, 0, 1_000, 2_000]
    # After a quiet spell the burst is available again.
    assert throttle_slot(tat, 60_000, 3_000, 3, 3).start_at == 60_000


def test_rate_limit_window() -> None:
    assert rate_allows([], 0, 1_000, 1)
    assert rate_allows([500], 1_000, 1_000, 2)
    assert not rate_allows([0], 999, 1_000, 1)
    assert rate_allows([0], 1_000, 1_000, 1)


def test_priority_and_keys() -> None:
    event = {"name": "a", "data": {"p": 5, "user": "u1", "n": 3, "big": 10**9}}
    assert priority_s("event.data.p * 2", event) == 10
    assert priority_s("event.data.big", event) == MAX_PRIORITY_S
    assert priority_s("-event.data.big", event) == -MAX_PRIORITY_S
    assert priority_s("event.data.missing", event) == 0
    assert priority_s("'text'", event) == 0
    assert key_value("event.data.user", event) == "u1"
    assert key_value("event.data.n", event) == "3"
    assert key_value("event.data.missing", event) == ""
    assert key_value(None, event) == ""


def test_concurrency_scopes() -> None:
    function = {
        "id": "app-f",
        "concurrency": [
            {"limit": 2, "key": "event.data.user"},
            {"limit": 5, "key": "event.data.team", "scope": "env"},
        ],
    }
    event = {"name": "a", "data": {"user": "u", "team": "t"}}
    (fn_slot, fn_limit), (env_slot, env_limit) = run_slots(function, event)
    assert (fn_limit, env_limit) == (2, 5)
    other = {**function, "id": "app-g"}
    fn_other, env_other = run_slots(other, event)
    assert fn_other[0] != fn_slot  # fn scope: per function
    assert env_other[0] == env_slot  # env scope: shared by the key


# retries


def test_backoff_uses_official_table_with_jitter() -> None:
    class Fixed(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def uniform(self, a: float, b: float) -> float:
            return a + (b - a) * self.value

    low, high = Fixed(0.0), Fixed(1.0)
    table_s = [15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200]
    for attempt, base in enumerate(table_s):
        assert retry.backoff_ms(attempt, None, low) == base * 1000
        assert retry.backoff_ms(attempt, None, high) == (base + 30) * 1000
    assert retry.backoff_ms(50, None, low) == 7_200_000
    seeded = {retry.backoff_ms(0, None, random.Random(seed)) for seed in range(20)}
    assert len(seeded) > 1
    assert all(15_000 <= d <= 45_000 for d in seeded)
    assert retry.backoff_ms(3, 0.5, low) == 500


def test_retry_counts() -> None:
    assert retry.max_attempts({}, 4) == 5
    step = {"steps": {"step": {"retries": {"attempts": 0}}}}
    assert retry.max_attempts(step, 4) == 1
    step = {"steps": {"step": {"retries": {"attempts": 99}}}}
    assert retry.max_attempts(step, 4) == 21


# admission against a real store


class Harness:
    def __init__(self, path: Path) -> None:
        self.store = Store(path / "executor.db")
        self.clock = Clock(1_000_000)
        self.started: list[dict[str, Any]] = []
        # Data of the events whose runs a limit recorded as Skipped.
        self.skipped: list[dict[str, Any]] = []
        self.cancelled: list[str] = []
        self.admission = Admission(
            self.store, FlowState(self.store.db), self.start, self.cancel, self.clock
        )
        self.sequence = 0

    def start(
        self,
        function: dict[str, Any],
        item: ev.Accepted,
        *,
        events: list[dict[str, Any]] | None = None,
        first_call_at: int | None = None,
        claim: bool = True,
        skipped: bool = False,
    ) -> str | None:
        assert not claim, "admission de-duplicates event ids itself"
        if skipped:
            self.skipped.append(item.event["data"])
            return f"skipped-{len(self.skipped)}"
        run_id = f"run-{len(self.started)}"
        self.store.save_run(
            Run(
                run_id, function["id"], item.internal_id, item.event, events or [], 1, 0
            )
        )
        self.started.append(
            {"item": item, "events": events, "at": first_call_at, "run_id": run_id}
        )
        return run_id

    def cancel(self, run_id: str) -> bool:
        self.cancelled.append(run_id)
        return True

    def send(self, function: dict[str, Any], **data: Any) -> None:
        if self.store.get_function(function["id"]) is None:
            # One app per function, so registering one archives no other.
            self.store.save_app(
                f"app-{function['id']}", "http://app", "sum", "sync", 0, [function]
            )
        self.sequence += 1
        internal = f"01J{self.sequence:023d}"
        event = {"name": "t/e", "data": data, "id": internal, "ts": self.clock.now}
        with self.store.transaction():
            self.admission.admit(function, ev.Accepted(internal, event, self.clock.now))

    def advance(self, delta: int) -> None:
        self.clock.now += delta
        self.admission.fire_due()


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_debounce_last_event_wins_and_timeout_caps(harness: Harness) -> None:
    fn = {"id": "f", "debounce": {"period": "5s", "timeout": "10s"}}
    for n in range(17):  # every 900 ms for ~15 s
        harness.send(fn, n=n)
        harness.advance(900)
    # The timeout forced one run at 10 s with the newest event at that time.
    assert [s["item"].event["data"]["n"] for s in harness.started] == [11]
    harness.advance(5_000)
    assert [s["item"].event["data"]["n"] for s in harness.started] == [11, 16]


def test_batch_by_size_timeout_and_key(harness: Harness) -> None:
    fn = {
        "id": "f",
        "batchEvents": {"maxSize": 3, "timeout": "2s", "key": "event.data.k"},
    }
    for n in range(3):
        harness.send(fn, k="a", n=n)
    harness.send(fn, k="b", n=9)
    assert len(harness.started) == 1
    assert [e["data"]["n"] for e in harness.started[0]["events"]] == [0, 1, 2]
    assert harness.started[0]["item"].event["data"]["n"] == 0
    harness.advance(2_000)
    assert [e["data"]["n"] for e in harness.started[1]["events"]] == [9]


def test_batch_without_timeout_is_not_batched(harness: Harness) -> None:
    harness.send({"id": "f", "batchEvents": {"maxSize": 3}}, n=1)
    assert len(harness.started) == 1


def test_rate_limit_idempotency_and_dedup(harness: Harness) -> None:
    limited = {
        "id": "r",
        "rateLimit": {"limit": 1, "period": "1m", "key": "event.data.k"},
    }
    for n, k in enumerate(("a", "a", "b")):
        harness.send(limited, k=k, n=n)
    assert len(harness.started) == 2
    assert harness.skipped == [{"k": "a", "n": 1}]
    harness.advance(MINUTE)
    harness.send(limited, k="a")
    assert len(harness.started) == 3
    idem = {"id": "i", "idempotency": "event.data.k"}
    harness.send(idem, k="x", n=1)
    harness.send(idem, k="x", n=2)
    assert len(harness.started) == 4
    assert harness.skipped[1:] == [{"k": "x", "n": 2}]


def test_singleton_skip_and_cancel(harness: Harness) -> None:
    skip = {"id": "s", "singleton": {"mode": "skip", "key": "event.data.k"}}
    harness.send(skip, k="a")
    harness.send(skip, k="a", n=2)
    harness.send(skip, k="b")
    assert len(harness.started) == 2
    assert harness.skipped == [{"k": "a", "n": 2}]
    cancel = {"id": "c", "singleton": {"mode": "cancel"}}
    harness.send(cancel)
    harness.send(cancel)
    assert harness.cancelled == [harness.started[2]["run_id"]]
    assert len(harness.started) == 4


@pytest.mark.parametrize(
    "limit",
    [
        {"rateLimit": {"limit": 1, "period": "1m", "key": "event.data.k"}},
        {"idempotency": "event.data.k"},
        {"singleton": {"mode": "skip", "key": "event.data.k"}},
    ],
    ids=["rate-limit", "idempotency", "singleton-skip"],
)
def test_dropped_event_leaves_a_skipped_run(
    tmp_path: Path, limit: dict[str, Any]
) -> None:
    store = Store(tmp_path / "executor.db")
    executor = Executor(store, ExecutorConfig(data_dir=tmp_path), lambda: None)
    function = {
        "id": "f",
        "triggers": [{"event": "t/e"}],
        "steps": {"step": {"runtime": {"url": "http://127.0.0.1:9/api"}}},
        **limit,
    }
    store.save_app("app", "http://127.0.0.1:9/api", "sum", "sync", 0, [function])

    def send(k: str, event_id: str | None = None) -> str:
        raw: dict[str, Any] = {"name": "t/e", "data": {"k": k}}
        if event_id is not None:
            raw["id"] = event_id
        item = ev.normalise(raw, str(ULID()), 0)
        executor.ingest([item])
        return item.internal_id

    first, dropped = send("a"), send("a")
    [started] = store.runs_for_event(first)
    assert started.status == "Queued"
    [skipped] = store.runs_for_event(dropped)
    assert skipped.status == "Skipped"
    assert skipped.ended
    assert skipped.ended_at == skipped.created_at
    assert skipped.started_at is None
    assert skipped.output is None
    queued = "SELECT COUNT(*) FROM queue WHERE run_id = ?"
    assert store.db.execute(queued, (skipped.run_id,)).fetchone()[0] == 0
    assert store.get_run(skipped.run_id) == skipped
    # Cancelling answers as for any ended run and changes nothing.
    assert executor.cancel(skipped.run_id)
    assert store.get_run(skipped.run_id) == skipped
    # Never ran, so no inngest/function.* events.
    names = {e.event["name"] for e in store.list_events(100, None, None)}
    assert not names & ev.LIFECYCLE_EVENTS
    # A repeated event id only fails to start runs (protocol 3.4): no run.
    assert len(store.runs_for_event(send("b", "same-id"))) == 1
    assert store.runs_for_event(send("c", "same-id")) == []


def test_throttle_and_priority_set_the_first_call_time(harness: Harness) -> None:
    throttled = {"id": "t", "throttle": {"limit": 1, "period": "2s", "burst": 1}}
    for _ in range(3):
        harness.send(throttled)
    now = harness.clock.now
    assert [s["at"] for s in harness.started] == [now, now + 2_000, now + 4_000]
    prioritised = {"id": "p", "priority": {"run": "event.data.p"}}
    harness.send(prioritised, p=30)
    harness.send(prioritised, p=-5)
    assert harness.started[-2]["at"] == now - 30_000
    assert harness.started[-1]["at"] == now + 5_000


def test_gate_limits_calls_in_flight_per_key(harness: Harness) -> None:
    store = harness.store
    store.save_app("app", "http://x", "c", "s", 0, [
        {"id": "g", "concurrency": [{"limit": 1, "key": "event.data.k"}],
         "steps": {"step": {"runtime": {"url": "http://x"}}}},
    ])  # fmt: skip
    for n, k in enumerate(["a", "a", "b"]):
        event = {"name": "e", "data": {"k": k}, "id": str(n), "ts": 0}
        store.save_run(Run(f"r{n}", "g", str(n), event, [event], 1, 0))
        store.enqueue(f"r{n}", wire.DISCOVERY, "call", 0, n)
    store.enqueue("r0", "sleepy", "sleep", 0, 0)
    gate = ConcurrencyGate(store, FlowState(store.db))
    first = gate.lease(10, 10, set())
    # r1 waits for r0's slot; a sleep holds no slot and is not blocked.
    assert sorted(i.run_id + ":" + i.kind for i in first) == [
        "r0:call",
        "r0:sleep",
        "r2:call",
    ]
    assert gate.lease(10, 10, set()) == []
    gate.release(next(i for i in first if i.run_id == "r0" and i.kind == "call"))
    assert [i.run_id for i in gate.lease(10, 10, set())] == ["r1"]
