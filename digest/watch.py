"""Keeping a service of `digest dev` running: start it again when it dies
on its own, and give up on a crash loop rather than spin.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable

from digest.stack import Service, StackError

log = logging.getLogger("digest.stack")


def exit_status(returncode: int) -> str:
    """How a process ended, in words: `code 1`, `signal SIGKILL`."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"code {returncode}"


class Watch:
    """Starts `service` again each time it exits on its own, from a thread
    that lives until `stop`, and gives up on a crash loop: more than
    `max_restarts` exits within `window` seconds. Then `on_give_up` runs
    (on the watch's thread) and `gave_up` is true.

    The restarted process gets the parent-death signal too: it is forked
    from this thread, which ends only in `stop`, after the process has been
    stopped (or with this whole process). `keep_going` is asked before each
    restart: False once the caller is shutting down, so that a service
    stopping with it is not started again.
    """

    def __init__(
        self,
        service: Service,
        *,
        on_give_up: Callable[[], None],
        keep_going: Callable[[], bool] = lambda: True,
        max_restarts: int = 3,
        window: float = 60.0,
        interval: float = 0.5,
    ) -> None:
        self.service = service
        self.gave_up = False
        self._on_give_up = on_give_up
        self._keep_going = keep_going
        self._max_restarts = max_restarts
        self._window = window
        self._interval = interval
        self._exits: deque[float] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{service.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, then stop the service; no restart after this."""
        with self._lock:
            self._stopping.set()
        self.service.stop()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            if self.service.alive():
                continue
            with self._lock:
                if self._stopping.is_set() or not self._keep_going():
                    return
                if not self._restart():
                    self.gave_up = True
                    break
        if self.gave_up:
            self._on_give_up()

    def _restart(self) -> bool:
        """Start the service again unless it is in a crash loop; whether it
        was started."""
        service = self.service
        how = exit_status(service.process.returncode)
        now = time.monotonic()
        self._exits.append(now)
        while self._exits and self._exits[0] < now - self._window:
            self._exits.popleft()
        if len(self._exits) > self._max_restarts:
            log.error(
                "%s exited (%s) %d times within %.0f s: not starting it again; "
                "stopping (log: %s)",
                service.name,
                how,
                len(self._exits),
                self._window,
                service.log_path,
            )
            return False
        log.warning(
            "%s (pid %d) exited (%s); starting it again on %s (log: %s)",
            service.name,
            service.pid,
            how,
            service.url,
            service.log_path,
        )
        try:
            # This thread lives until `stop`: the new process dies with it.
            service.respawn(thread_lives_long=True)
        except (OSError, StackError) as exc:
            log.error(
                "%s could not be started again: %s; stopping (log: %s)",
                service.name,
                exc,
                service.log_path,
            )
            return False
        return True
