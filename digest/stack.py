"""Starting and stopping Digest's processes on local ports.

Used by `digest demo` and `digest dev`, and by the test suite, so that all
of them run the stack exactly the same way: real processes, real HTTP.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    pass


class CannotListen(StackError):
    """A port that cannot be listened on; `errno` says why (EADDRINUSE:
    something holds it; EADDRNOTAVAIL: the address is not this machine's)."""

    def __init__(self, message: str, errno_: int | None) -> None:
        super().__init__(message)
        self.errno = errno_


PORT_RANGE = (1, 65535)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def host_port(host: str, port: int) -> str:
    """`host:port`, an IPv6 address in brackets as in a URL."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def require_free_port(port: int, host: str = LOOPBACK) -> None:
    """CannotListen unless `port` on `host` can be listened on now.

    A service that cannot bind exits, but a process already on the port
    answers in its place; without this, a caller waiting for an answer
    would take that other process for its own.
    """
    low, high = PORT_RANGE
    if not low <= port <= high:
        # bind() would raise OverflowError, or a wrapped port would be used.
        raise CannotListen(f"port must be {low}-{high}, not {port}", None)
    # The family uvicorn binds with for the same host.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the server itself binds: connections of a stopped server that
        # linger in TIME_WAIT do not count, a listening socket does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CannotListen(
                    f"port {port} on {host} is already in use (by a service "
                    "left from an earlier run?)",
                    exc.errno,
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                reason = "that address is not on this machine"
            else:
                reason = exc.strerror or str(exc)
            raise CannotListen(
                f"cannot listen on {host_port(host, port)}: {reason}", exc.errno
            ) from None


def _port_to_listen_on(port: int | None) -> int:
    """`port` once known to be free, or a free one when none is asked for."""
    if not port:
        return free_port()
    require_free_port(port)
    return port


def answers(url: str, *, timeout: float = 1.0) -> bool:
    """Whether `url` answers a GET with a 2xx."""
    try:
        return httpx.get(url, timeout=timeout).is_success
    except httpx.HTTPError:
        return False


@dataclass
class Service:
    """A child process serving HTTP on a loopback port."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)
    # How it was started, for `respawn`.
    _start: Callable[[IO[bytes], bool], subprocess.Popen[bytes]] | None = field(
        default=None, repr=False
    )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_until_ready(self, path: str, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StackError(
                    f"{self.name} exited with code {self.process.returncode} "
                    f"before it was ready:\n{self.log_tail()}"
                )
            if answers(self.url + path, timeout=0.5):
                return
            time.sleep(0.1)
        raise StackError(
            f"{self.name} did not answer {self.url}{path} within {timeout:.0f}s:\n"
            f"{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.process.kill()
            self.process.wait(timeout=10)

    def respawn(self, *, thread_lives_long: bool = False) -> None:
        """Start it again, exactly as it was started (same command, port,
        environment and log), once it has exited; not waiting for it.

        `thread_lives_long`: the calling thread, if not the main one, lives
        as long as the service should, so the parent-death signal can be
        asked for from it (see `_die_with_parent`).
        """
        if self._start is None or self.alive():
            raise StackError(f"{self.name} cannot be started again now")
        if self._log is not None:
            self._log.close()
        self._log = self.log_path.open("ab")
        self.process = self._start(self._log, thread_lives_long)


# prctl(2) option: the signal a child gets when the thread that forked it ends.
_PR_SET_PDEATHSIG = 1


def _die_with_parent(*, any_thread: bool = False) -> Callable[[], None] | None:
    """A preexec_fn that has the child sent SIGTERM when this process dies,
    however it dies (SIGKILL included): None where that cannot be had.

    Linux only. The kernel sends the signal when the *thread* that forked
    the child ends, not the process, so it is only asked for from the main
    thread, unless `any_thread` says the calling thread lives as long as
    the child should (a `Watch`'s): a child started from a short-lived
    thread would be stopped with it. Everything the child runs is resolved
    here, in the parent: the child of a fork in a threaded process must
    take no lock (no import, no logging) before it execs.
    """
    if not sys.platform.startswith("linux"):
        return None
    if not any_thread and threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)
    getppid, exit_now = os.getppid, os._exit

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        # The parent may have died between fork and prctl: nobody would
        # signal this child then.
        if getppid() != parent:
            exit_now(1)

    return preexec


def _spawn(
    name: str,
    args: list[str],
    *,
    url: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    own_group: bool = False,
) -> Service:
    """`own_group`: in a process group of its own, so that a Ctrl-C in the
    terminal reaches only this process, which stops the service itself."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, *args]
    full_env = {**os.environ, **(env or {})}

    def start(log: IO[bytes], any_thread: bool) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            # No service outlives the process that started it (`digest dev`
            # killed with SIGKILL, a test run cut short).
            preexec_fn=_die_with_parent(any_thread=any_thread),
            process_group=0 if own_group else None,
        )

    log = log_path.open("ab")
    return Service(
        name=name,
        url=url,
        process=start(log, False),
        log_path=log_path,
        _log=log,
        _start=start,
    )


def start_executor(
    data_dir: Path,
    *,
    port: int | None = None,
    sdk_urls: list[str] | None = None,
    extra_args: list[str] | None = None,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    own_group: bool = False,
) -> Service:
    """`python -m devserver` on a loopback port; `env` is laid over this
    process's environment (an empty value unsets a key: devserver reads an
    empty variable as unset). `own_group`: see `_spawn`."""
    port = _port_to_listen_on(port)
    args = ["-m", "devserver", "--host", LOOPBACK, "--port", str(port)]
    args += ["--data-dir", str(data_dir)]
    for url in sdk_urls or []:
        args += ["--sdk-url", url]
    args += extra_args or []
    service = _spawn(
        "executor",
        args,
        url=f"http://{LOOPBACK}:{port}",
        log_path=log_path or data_dir / "executor.log",
        env=env,
        own_group=own_group,
    )
    service.wait_until_ready("/health")
    return service


def _start_digest_service(
    name: str,
    command: list[str],
    *,
    executor_url: str,
    database_url: str,
    log_path: Path,
    port: int | None,
    env: Mapping[str, str] | None,
) -> Service:
    """`digest COMMAND` on a loopback port, in dev mode, talking to
    `executor_url` and storing jobs at `database_url`."""
    port = _port_to_listen_on(port)
    url = f"http://{LOOPBACK}:{port}"
    settings_env = {
        "INNGEST_DEV": "1",
        "INNGEST_BASE_URL": executor_url,
        "DATABASE_URL": database_url,
        "PUBLIC_URL": url,
        **(env or {}),
    }
    args = ["-m", "digest.cli", *command, "--host", LOOPBACK, "--port", str(port)]
    service = _spawn(name, args, url=url, log_path=log_path, env=settings_env)
    service.wait_until_ready("/healthz")
    return service


def start_backend(
    *,
    executor_url: str,
    database_url: str,
    log_path: Path,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Service:
    """`digest serve`: the API, serving the functions unless told not to."""
    return _start_digest_service(
        "backend",
        ["serve"],
        executor_url=executor_url,
        database_url=database_url,
        log_path=log_path,
        port=port,
        env=env,
    )


def start_functions_service(
    *,
    executor_url: str,
    database_url: str,
    log_path: Path,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Service:
    """`digest functions serve`: the step functions alone, at /api/inngest.

    Sync the executor with it (`sync_app(service.url)`) and run the backend
    beside it with SERVE_FUNCTIONS=false.
    """
    return _start_digest_service(
        "functions",
        ["functions", "serve"],
        executor_url=executor_url,
        database_url=database_url,
        log_path=log_path,
        port=port,
        env=env,
    )


def request_sync(app_url: str) -> str | None:
    """One sync of the SDK at `app_url`: a PUT on its /api/inngest, as the
    official dev server sends, which makes the SDK register its functions
    with its executor. None once it did; else what stopped it, in the words
    of whoever answered (the SDK, or the executor through it).

    Raises httpx.HTTPError when nothing answered.
    """
    answer = httpx.put(
        f"{app_url}/api/inngest",
        headers={"x-inngest-server-kind": "dev"},
        json={"url": f"{app_url}/api/inngest"},
        timeout=10,
    )
    return _refusal(answer)


def _refusal(answer: httpx.Response) -> str | None:
    try:
        body = answer.json() if answer.content else {}
    except ValueError:
        body = {"message": answer.text[:200]}
    if answer.is_success and not (isinstance(body, dict) and "error" in body):
        return None
    said = body if isinstance(body, dict) else {"message": str(body)}
    code = said.get("code")
    message = said.get("message") or said.get("error") or ""
    named = " ".join(str(part) for part in (code, message) if part)
    refusal = f"the app answered {answer.status_code}" + (f": {named}" if named else "")
    if code == "server_kind_mismatch":
        refusal += (
            " (the app runs in cloud mode, the prod profile, and this sync "
            "comes as a dev server's: run the app with APP_ENV=dev)"
        )
    return refusal


def sync_app(backend_url: str, *, timeout: float = 30.0) -> None:
    """Sync the app at `backend_url` (the backend, or the functions service)
    with its executor, trying again until `timeout`: at start the app or its
    executor may not be ready yet, and a refusal then is not final."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            refusal = request_sync(backend_url)
        except httpx.HTTPError as exc:
            refusal = f"no answer ({type(exc).__name__})"
        if refusal is None:
            return
        last = refusal
        time.sleep(0.2)
    raise StackError(f"the app did not sync with its executor: {last}")


def dev_token(backend_url: str, subject: str = "local-user") -> str:
    """A bearer token for `subject` from a dev backend's POST /api/dev/token."""
    try:
        answer = httpx.post(
            f"{backend_url}/api/dev/token", json={"sub": subject}, timeout=10
        )
    except httpx.HTTPError as exc:
        raise StackError(f"no token from {backend_url}: {exc}") from None
    if answer.status_code != 200:
        raise StackError(
            f"no token from {backend_url} (is it running the dev profile?): "
            f"{answer.status_code} {answer.text[:200]}"
        )
    token: str = answer.json()["token"]
    return token


@dataclass
class LocalStack:
    """An executor and a backend that know each other, on loopback ports."""

    executor: Service
    backend: Service

    def stop(self) -> None:
        self.backend.stop()
        self.executor.stop()


def start_local_stack(
    home: Path,
    *,
    retry_interval: float | None = None,
    backend_env: Mapping[str, str] | None = None,
    database_url: str | None = None,
) -> LocalStack:
    """Start both on free ports with their state under `home`, and sync them.

    `retry_interval` replaces the executor's backoff table with a fixed
    delay, which tests use to keep retries short. The jobs go to a SQLite
    file under `home` unless `database_url` names another database.
    """
    backend_port = free_port()
    backend_url = f"http://{LOOPBACK}:{backend_port}"
    extra = [] if retry_interval is None else ["--retry-interval", str(retry_interval)]
    executor = start_executor(
        home / "executor", sdk_urls=[f"{backend_url}/api/inngest"], extra_args=extra
    )
    try:
        backend = start_backend(
            executor_url=executor.url,
            database_url=database_url or f"sqlite+aiosqlite:///{home / 'digest.db'}",
            log_path=home / "backend.log",
            port=backend_port,
            env=backend_env,
        )
    except BaseException:
        executor.stop()
        raise
    try:
        sync_app(backend.url)
    except BaseException:
        backend.stop()
        executor.stop()
        raise
    return LocalStack(executor=executor, backend=backend)
