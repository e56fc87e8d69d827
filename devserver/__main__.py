"""``python -m devserver``: run the embedded Inngest executor."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from devserver.config import ExecutorConfig
from devserver.server import run


def parse_args(argv: list[str] | None = None) -> tuple[ExecutorConfig, bool]:
    defaults = ExecutorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m devserver",
        description="Embedded executor speaking the Inngest SDK protocol.",
    )
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", "-p", type=int, default=defaults.port)
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
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    return ExecutorConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        sdk_urls=args.sdk_url,
        retry_interval=args.retry_interval,
        poll_interval=args.poll_interval,
    ), args.verbose


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
