"""1,000 jobs at once through two backend replicas on PostgreSQL.

    .venv/bin/python bench/replicas.py [--jobs 1000] [--admin-url URL]

Creates a database of its own on the PostgreSQL server at --admin-url
(default: postgresql://postgres@127.0.0.1:5432/postgres) and drops it at
the end. Starts, on free loopback ports, the embedded executor, one
functions service (`digest functions serve`) synced with it, and two
backend replicas (`digest serve` with SERVE_FUNCTIONS=false), each relaying
the outbox to the executor. This is the README's "API and functions as two
services" shape: the executor keeps one URL per app, so the functions are
served in one place while the API is served by both replicas.

All jobs are posted concurrently, alternating between the replicas; each
is a short piece of a corpus document. Then it waits until every job has
ended and reports, from the database and from the executor's REST API:
how many succeeded, how many runs each job's event started (exactly one is
the claim), how many copies of each event reached the executor (more than
one is harmless: the event id is the job id), whether every outbox row is
marked sent, the wall time and the jobs per second. Not a test: figures go
in notes. Exits non-zero if any claim fails.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from ulid import ULID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest import stack
from functions import summarizer

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PIECE_CHARS = 1500


def short_documents() -> list[str]:
    """The corpus cut at blank lines into pieces of at most PIECE_CHARS."""
    pieces: list[str] = []
    for path in sorted(CORPUS.glob("*.rst")):
        current = ""
        for paragraph in path.read_text(encoding="utf-8").split("\n\n"):
            if current and len(current) + len(paragraph) > PIECE_CHARS:
                pieces.append(current)
                current = ""
            current += paragraph + "\n\n"
        if current.strip():
            pieces.append(current)
    # A piece that is all code or headings has nothing to summarise, and
    # one of a sentence or two makes a summary not worth timing.
    return [p for p in pieces if len(_sentences(p)) >= 4]


def _sentences(piece: str) -> list[summarizer.SentenceItem]:
    return summarizer.split_sentences(summarizer.extract_prose(piece, "rst"))


@dataclass
class Services:
    executor: stack.Service
    functions: stack.Service
    replicas: list[stack.Service]

    def stop(self) -> None:
        for service in [*self.replicas, self.functions, self.executor]:
            service.stop()


def start_services(home: Path, database_url: str) -> Services:
    functions_port = stack.free_port()
    functions_url = f"http://{stack.LOOPBACK}:{functions_port}"
    executor = stack.start_executor(
        home / "executor", sdk_urls=[f"{functions_url}/api/inngest"]
    )
    started: list[stack.Service] = [executor]
    try:
        functions = stack.start_functions_service(
            executor_url=executor.url,
            database_url=database_url,
            log_path=home / "functions.log",
            port=functions_port,
        )
        started.append(functions)
        stack.sync_app(functions.url)
        replicas = []
        # One after the other: the dev profile migrates on start, and two
        # processes migrating one database at once would race.
        for name in ("a", "b"):
            replica = stack.start_backend(
                executor_url=executor.url,
                database_url=database_url,
                log_path=home / f"backend-{name}.log",
                env={"SERVE_FUNCTIONS": "false"},
            )
            started.append(replica)
            replicas.append(replica)
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    return Services(executor, functions, replicas)


async def submit_all(
    replicas: list[stack.Service], token: str, texts: list[str]
) -> tuple[list[str], Counter[int], int, float]:
    """Post every text at once, alternating replicas; return the accepted
    ids, the count of each first answer's status code, how many answers
    were 503 (each followed, after its Retry-After, by another try), and
    the seconds it took."""
    auth = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=len(texts), max_keepalive_connections=50)
    clients = [
        httpx.AsyncClient(
            base_url=replica.url, headers=auth, timeout=300, limits=limits
        )
        for replica in replicas
    ]
    codes: Counter[int] = Counter()
    accepted: list[str] = []
    retried: list[int] = []

    async def post(index: int, text: str) -> None:
        client = clients[index % len(clients)]
        job = {"text": text, "format": "rst"}
        answer = await client.post("/api/summaries", json=job)
        codes[answer.status_code] += 1
        # As a well-behaved client does: a 503 says when to try again.
        while answer.status_code == 503:
            retried.append(index)
            await asyncio.sleep(float(answer.headers["Retry-After"]))
            answer = await client.post("/api/summaries", json=job)
        if answer.status_code == 202:
            accepted.append(answer.json()["id"])

    started = time.perf_counter()
    try:
        await asyncio.gather(*(post(i, text) for i, text in enumerate(texts)))
    finally:
        for client in clients:
            await client.aclose()
    return accepted, codes, len(retried), time.perf_counter() - started


async def wait_until_ended(
    dsn: str, job_ids: list[str], give_up_after: float
) -> dict[str, int]:
    """Poll the jobs table until every job of `job_ids` has ended; the
    count of each status among them."""
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + give_up_after
        last_report = 0.0
        while True:
            rows = await connection.fetch(
                "SELECT status, count(*) AS n FROM jobs WHERE id = ANY($1) "
                "GROUP BY status",
                job_ids,
            )
            statuses = {row["status"]: row["n"] for row in rows}
            ended = sum(
                statuses.get(s, 0) for s in ("succeeded", "failed", "cancelled")
            )
            if ended >= len(job_ids) or time.monotonic() > deadline:
                return statuses
            if time.monotonic() - last_report > 30:
                print(f"  ... {ended}/{len(job_ids)} ended {statuses}", flush=True)
                last_report = time.monotonic()
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


async def stored_jobs(dsn: str) -> tuple[int, int]:
    """How many jobs the database holds, and how many outbox rows are
    still unsent."""
    connection = await asyncpg.connect(dsn)
    try:
        jobs: int = await connection.fetchval("SELECT count(*) FROM jobs")
        unsent: int = await connection.fetchval(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
        )
        return jobs, unsent
    finally:
        await connection.close()


async def runs_per_job(executor_url: str) -> tuple[Counter[str], Counter[str]]:
    """From the executor: copies received and runs started, per event id."""
    copies: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=executor_url, timeout=60) as http:
        events: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": "1000", "name": "summary/requested"}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/v1/events", params=params)).json()["data"]
            if not page:
                break
            events += page
            cursor = page[-1]["internal_id"]
        for event in events:
            copies[event["id"]] += 1
            found = await http.get(f"/v1/events/{event['internal_id']}/runs")
            runs[event["id"]] += len(found.json()["data"])
    return copies, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    database = f"digest_bench_{str(ULID()).lower()}"
    dsn = args.admin_url.rsplit("/", 1)[0] + f"/{database}"
    database_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    asyncio.run(_admin(args.admin_url, f'CREATE DATABASE "{database}"'))
    try:
        with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
            ok = _bench(Path(folder), database_url, dsn, args.jobs, args.timeout)
    finally:
        asyncio.run(
            _admin(args.admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        )
    sys.exit(0 if ok else 1)


async def _admin(admin_url: str, sql: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _bench(home: Path, database_url: str, dsn: str, jobs: int, timeout: float) -> bool:
    documents = short_documents()
    texts = [documents[i % len(documents)] for i in range(jobs)]
    services = start_services(home, database_url)
    try:
        token = stack.dev_token(services.replicas[0].url)
        print(
            f"{jobs} jobs ({len(documents)} distinct pieces, "
            f"median {sorted(map(len, texts))[jobs // 2]} chars) through "
            f"{len(services.replicas)} replicas on PostgreSQL"
        )
        started = time.perf_counter()
        accepted, codes, retries, posting = asyncio.run(
            submit_all(services.replicas, token, texts)
        )
        print(
            f"posted in {posting:.1f}s: first answers {dict(codes)}, "
            f"{retries} tries again after a 503, {len(accepted)} accepted"
        )
        statuses = asyncio.run(wait_until_ended(dsn, accepted, timeout))
        wall = time.perf_counter() - started
        stored, unsent = asyncio.run(stored_jobs(dsn))
        copies, runs = asyncio.run(runs_per_job(services.executor.url))
    except BaseException:
        for service in [services.executor, services.functions, *services.replicas]:
            print(f"--- {service.name} ---\n{service.log_tail(15)}")
        raise
    finally:
        services.stop()

    run_counts = Counter(runs[job_id] for job_id in accepted)
    copy_counts = Counter(copies[job_id] for job_id in accepted)
    succeeded = statuses.get("succeeded", 0)
    print(f"accepted jobs:        {statuses}")
    # A request that timed out waiting for a connection after its job was
    # committed answers 503 too, so its retry stores a second job.
    print(f"jobs stored:          {stored} ({stored - len(accepted)} from a 503)")
    print(f"runs per job:         {dict(sorted(run_counts.items()))}")
    print(f"event copies per job: {dict(sorted(copy_counts.items()))}")
    print(f"outbox rows unsent:   {unsent}")
    print(f"wall time:            {wall:.1f}s ({succeeded / wall:.1f} jobs/s)")
    return (
        len(accepted) == jobs
        and succeeded == jobs
        and run_counts == Counter({1: jobs})
        and unsent == 0
    )


if __name__ == "__main__":
    main()
