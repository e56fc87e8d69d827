"""``python -m devserver``: run the embedded Inngest executor."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from devserver.config import ExecutorConfig
from devserver.server import run
from devserver.signing import keys_for


def parse_args(argv: list[str] | None = None) -> tuple[ExecutorConfig, bool]:
    defaults = ExecutorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m devserver",
        description="Embedded executor speaking the Inngest SDK protocol.",
    )
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", "-p", type=_port, default=defaults.port)
    parser.add_argument("--data-dir", type=Path, default=defaults.data_dir)
    parser.add_argument(
        "-u",
        "--sdk-url",
        action="append",
        default=[],
        help="app serve endpoint to sync, e.g. http://127.0.0.1:8000/api/inngest",
    )
    parser.add_argument(
        "--retry-interval",
        type=float,
        default=None,
        help="fixed seconds between attempts (default: official backoff)",
    )
    parser.add_argument("--poll-interval", type=float, default=defaults.poll_interval)
    parser.add_argument(
        "--startup-sync-wait",
        type=float,
        default=defaults.startup_sync_wait,
        help="at start, hold calls to apps until every --sdk-url has synced, "
        "at most this many seconds (0: don't wait)",
    )
    parser.add_argument(
        "--call-timeout",
        type=float,
        default=defaults.call_timeout,
        help="seconds one call to an app may take before it counts as failed",
    )
    parser.add_argument(
        "--slow-call-warning",
        type=float,
        default=defaults.slow_call_warning,
        help="log a call still running after this many seconds",
    )
    parser.add_argument(
        "--cron-tick",
        type=float,
        default=None,
        help="testing: real seconds one cron minute lasts (default: real time)",
    )
    parser.add_argument(
        "--signing-key",
        default=_env("INNGEST_SIGNING_KEY"),
        help="cloud mode: sign calls, check answers and bearers "
        "(default $INNGEST_SIGNING_KEY, which keeps the key out of `ps`)",
    )
    parser.add_argument(
        "--signing-key-fallback",
        default=_env("INNGEST_SIGNING_KEY_FALLBACK"),
        help="previous signing key, also accepted during a rotation "
        "(default $INNGEST_SIGNING_KEY_FALLBACK)",
    )
    parser.add_argument(
        "--event-key",
        action="append",
        default=None,
        help="cloud mode: event key accepted on /e/{key}, repeatable "
        "(default $INNGEST_EVENT_KEY)",
    )
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    if args.signing_key_fallback and not args.signing_key:
        parser.error("--signing-key-fallback needs --signing-key")
    try:
        keys_for(args.signing_key, args.signing_key_fallback)
    except ValueError as exc:
        parser.error(str(exc))
    event_key = _env("INNGEST_EVENT_KEY")
    return ExecutorConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        sdk_urls=args.sdk_url,
        retry_interval=args.retry_interval,
        poll_interval=args.poll_interval,
        startup_sync_wait=args.startup_sync_wait,
        call_timeout=args.call_timeout,
        slow_call_warning=args.slow_call_warning,
        cron_tick=args.cron_tick,
        signing_key=args.signing_key,
        signing_key_fallback=args.signing_key_fallback,
        event_keys=args.event_key or ([event_key] if event_key else []),
    ), args.verbose


def _port(text: str) -> int:
    """A port a socket can have: uvicorn would listen on a larger one modulo
    65536 while it logs the number given."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be 1-65535, not {port}")
    return port


def _env(name: str) -> str | None:
    # An empty variable counts as unset, as the SDK treats it.
    return os.environ.get(name) or None


def main(argv: list[str] | None = None) -> None:
    config, verbose = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO: one line per call would drown the
    # run lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        run(config)
    except KeyboardInterrupt:
        # uvicorn re-raises SIGINT after its graceful shutdown; that is done.
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
