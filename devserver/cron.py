"""Cron triggers: schedules, fire times and the ``scheduled.timer`` event.

A schedule is five cron fields or a descriptor (``@daily``, ``@every 1h``),
optionally prefixed by ``TZ=Area/City`` or ``CRON_TZ=Area/City``; without
a prefix it runs in UTC. Fire times are computed by croniter in the
schedule's zone, so ``TZ=Europe/Paris 0 9 * * *`` fires at 09:00 Paris
time on both sides of a daylight-saving change.

Missed ticks are not replayed. The scheduler keeps its next fire times in
memory, derived from the registered functions (which are stored), so after
a restart each schedule fires at its next tick after the restart, and the
ticks that fell while the executor was down are skipped, as the official
dev server does. A tick that did fire before a restart cannot fire twice:
its event id is the scheduled time, and event ids start at most one run
per function.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from ulid import ULID

from devserver import events as ev
from devserver.clock import now_ms, parse_duration_ms
from devserver.logtext import get_logger

logger = get_logger("digest.devserver.cron")

TIMER_EVENT = "inngest/scheduled.timer"

_ZONE_PREFIX = re.compile(r"^(?:CRON_TZ|TZ)=(\S+)\s+(.+)$")
_EVERY = re.compile(r"^@every\s+(\S+)$")
# Anchor of the accelerated test clock: a fixed instant, so that the
# accelerated time goes on where it was after a restart.
_ACCELERATION_ANCHOR_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


@dataclass(frozen=True)
class Schedule:
    expression: str  # as registered, prefix included
    spec: str  # the cron fields or descriptor
    zone: ZoneInfo
    every_ms: int | None = None  # for ``@every <duration>``


def parse(expression: str) -> Schedule:
    """Read a registered cron string; raise ValueError if it is not one."""
    text = expression.strip()
    zone = ZoneInfo("UTC")
    prefixed = _ZONE_PREFIX.match(text)
    if prefixed:
        try:
            zone = ZoneInfo(prefixed[1])
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {prefixed[1]!r}") from exc
        text = prefixed[2].strip()
    every = _EVERY.match(text)
    if every:
        period = parse_duration_ms(every[1])
        if period <= 0:
            raise ValueError(f"invalid interval in {expression!r}")
        return Schedule(expression, text, zone, every_ms=period)
    # croniter also takes a sixth (seconds) field; the official parser
    # accepts five fields or a descriptor only.
    if not text.startswith("@") and len(text.split()) != 5:
        raise ValueError(f"{expression!r} does not have five cron fields")
    if not croniter.is_valid(text):
        raise ValueError(f"invalid cron expression {expression!r}")
    return Schedule(expression, text, zone)


def next_fire_ms(schedule: Schedule, after_ms: int) -> int:
    """The first fire time strictly after ``after_ms`` (Unix ms)."""
    if schedule.every_ms is not None:
        return (after_ms // 1000) * 1000 + schedule.every_ms
    start = datetime.fromtimestamp(after_ms / 1000, tz=schedule.zone)
    fire: datetime = croniter(schedule.spec, start).get_next(datetime)
    return int(fire.timestamp() * 1000)


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def timer_event(expression: str, scheduled_ms: int, fire_ms: int) -> ev.Accepted:
    """The event a cron run receives (protocol 6.2)."""
    scheduled = rfc3339(scheduled_ms)
    event = {
        "name": TIMER_EVENT,
        "id": scheduled,
        "data": {
            "cron": expression,
            "scheduledAt": scheduled,
            "fireAt": rfc3339(fire_ms),
        },
        "ts": fire_ms,
    }
    # Received now on the real clock, which differs from ``fire_ms`` only
    # under the accelerated test clock.
    return ev.Accepted(str(ULID()), event, now_ms())


def cron_expressions(function: dict[str, Any]) -> list[str]:
    return [
        t["cron"]
        for t in function.get("triggers") or []
        if isinstance(t, dict) and isinstance(t.get("cron"), str)
    ]


def accelerated_clock(seconds_per_minute: float) -> Callable[[], int]:
    """A clock on which a minute lasts ``seconds_per_minute`` real seconds.

    For tests (``--cron-tick``): ``* * * * *`` then fires every
    ``seconds_per_minute`` seconds. The clock is anchored at a fixed
    instant so it does not jump back when the executor restarts.
    """
    factor = 60.0 / seconds_per_minute

    def clock() -> int:
        return int(
            _ACCELERATION_ANCHOR_MS + (now_ms() - _ACCELERATION_ANCHOR_MS) * factor
        )

    return clock


Fire = Callable[[dict[str, Any], ev.Accepted], None]


class CronScheduler:
    """Fires the cron triggers of the registered functions when due."""

    def __init__(
        self,
        functions: Callable[[], list[dict[str, Any]]],
        fire: Fire,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._functions = functions
        self._fire = fire
        self._clock = clock
        # (function id, expression) -> next fire time; a re-sync that
        # changes an expression arms the new one and drops the old one.
        self._armed: dict[tuple[str, str], int] = {}
        self._parsed: dict[str, Schedule | None] = {}

    def tick(self) -> int:
        """Fire every due schedule once; return how many fired."""
        now = self._clock()
        seen: set[tuple[str, str]] = set()
        fired = 0
        for function in self._functions():
            for expression in cron_expressions(function):
                schedule = self._schedule(function["id"], expression)
                if schedule is None:
                    continue
                key = (function["id"], expression)
                seen.add(key)
                due = self._armed.get(key)
                if due is None:
                    self._armed[key] = next_fire_ms(schedule, now)
                    logger.info(
                        "cron %r of %s armed: next at %s",
                        expression,
                        key[0],
                        rfc3339(self._armed[key]),
                    )
                    continue
                if now < due:
                    continue
                self._fire(function, timer_event(expression, due, now))
                fired += 1
                # From now, not from ``due``: ticks missed while the process
                # was busy or suspended are skipped, not replayed in a burst.
                self._armed[key] = next_fire_ms(schedule, now)
        for key in set(self._armed) - seen:
            del self._armed[key]
        return fired

    def next_due(self) -> int | None:
        return min(self._armed.values(), default=None)

    def _schedule(self, fn_id: str, expression: str) -> Schedule | None:
        if expression not in self._parsed:
            try:
                self._parsed[expression] = parse(expression)
            except ValueError as exc:
                logger.warning("function %s: cron trigger ignored: %s", fn_id, exc)
                self._parsed[expression] = None
        return self._parsed[expression]
