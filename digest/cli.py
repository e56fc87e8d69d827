"""The `digest` command."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn
from rich.console import Console

from digest import commands_jobs, logs
from digest.settings import SettingsFileError, get_settings

if TYPE_CHECKING:
    from digest.profile import Service

app = typer.Typer(
    help="Digest: summaries of documents as durable background jobs.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="The job store's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
functions_app = typer.Typer(
    help="Digest's step functions as a service of their own.", no_args_is_help=True
)
app.add_typer(functions_app, name="functions")
config_app = typer.Typer(help="The effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")
tunnel_app = typer.Typer(
    help="Expose a local port to the other side.", no_args_is_help=True
)
app.add_typer(tunnel_app, name="tunnel")
commands_jobs.register(app)

# What `digest dev` keeps from its executor, which is a dev server.
DEV_EXECUTOR_UNSET = (
    "INNGEST_SIGNING_KEY",
    "INNGEST_SIGNING_KEY_FALLBACK",
    "INNGEST_EVENT_KEY",
)
Host = Annotated[str, typer.Option("--host", help="Address to listen on.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON for scripts.")]
ServiceOption = Annotated[
    str,
    typer.Option(
        "--service",
        help="Check the profile as api (`digest serve`), functions "
        "(`digest functions serve`) or dev (`digest dev`) needs it.",
    ),
]


def _refuse_bad_profile(service: Service) -> None:
    """Stop with one line per problem if the profile cannot work for the
    service starting (each checks what it needs: digest.profile)."""
    from digest.profile import problems

    settings = get_settings()
    found = problems(settings, service)
    if found:
        typer.echo(f"the {settings.app_env} profile cannot start:", err=True)
        for problem in found:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(2)


def _port_in_range(param: typer.CallbackParam, value: int | None) -> int | None:
    """Stop with one line on a port no socket can have: bind() would raise
    (a traceback), or uvicorn would listen on the port modulo 65536."""
    from digest.stack import PORT_RANGE

    low, high = PORT_RANGE
    if value is not None and not low <= value <= high:
        flag = param.opts[0] if param.opts else f"--{param.name}"
        # click's own range error is a boxed panel under typer with rich.
        typer.echo(f"{flag} must be {low}-{high}, not {value}", err=True)
        raise typer.Exit(2)
    return value


def _refuse_busy_port(host: str, port: int, flag: str = "--port") -> None:
    """Stop with one line if `port` on `host` cannot be listened on: uvicorn
    would only say so with an errno, after starting everything else."""
    import errno

    from digest.stack import CannotListen, require_free_port

    try:
        require_free_port(port, host)
    except CannotListen as exc:
        if exc.errno == errno.EADDRINUSE:
            advice = f"stop what holds it or choose another port with {flag}"
        elif exc.errno == errno.EADDRNOTAVAIL:
            advice = "give --host 127.0.0.1 or one of this machine's addresses"
        else:
            advice = ""
        typer.echo(f"{exc}; {advice}" if advice else str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def demo(
    file: Annotated[
        Path | None,
        typer.Argument(help="Document to summarise (default: a PEP in examples/)."),
    ] = None,
) -> None:
    """Summarise FILE through the whole stack and print the summary."""
    from digest.demo import DEFAULT_DOCUMENT, DemoFailed, read_document, run_demo
    from digest.stack import StackError

    console = Console()
    try:
        text = read_document(file or DEFAULT_DOCUMENT)
    except DemoFailed as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    try:
        code = run_demo(get_settings(), file or DEFAULT_DOCUMENT, text, console)
    except (DemoFailed, StackError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}", highlight=False)
        code = 1
    raise typer.Exit(code)


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on.", callback=_port_in_range)
    ] = 8000,
    verbose: Verbose = False,
) -> None:
    """Run the backend alone, as production does."""
    _refuse_bad_profile("api")
    _refuse_busy_port(host, port)
    logs.configure(verbose)
    uvicorn.run(
        "backend.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=verbose,
    )


@functions_app.command("serve")
def functions_serve(
    host: Host = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on.", callback=_port_in_range)
    ] = 8001,
    verbose: Verbose = False,
) -> None:
    """Serve the step functions alone at /api/inngest (`functions.app:app`).

    Run the backend with SERVE_FUNCTIONS=false beside it, and sync the
    executor with this service's /api/inngest.
    """
    _refuse_bad_profile("functions")
    _refuse_busy_port(host, port)
    logs.configure(verbose)
    uvicorn.run(
        "functions.app:app",
        host=host,
        port=port,
        log_config=None,
        access_log=verbose,
    )


@app.command()
def dev(
    port: Annotated[
        int, typer.Option(help="Backend port.", callback=_port_in_range)
    ] = 8000,
    executor_port: Annotated[
        int, typer.Option(help="Executor port.", callback=_port_in_range)
    ] = 8288,
    tunnel: Annotated[
        bool,
        typer.Option("--tunnel", help="Expose the backend through TUNNEL_PROVIDER."),
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Run the executor and the backend together, for development."""
    from digest import stack
    from digest.watch import Watch

    if port == executor_port:
        typer.echo("--port and --executor-port must differ", err=True)
        raise typer.Exit(2)
    _refuse_bad_profile("dev")
    # Before the executor and the tunnel start, which would be left behind.
    _refuse_busy_port(stack.LOOPBACK, port)
    _refuse_busy_port(stack.LOOPBACK, executor_port, "--executor-port")
    logs.configure(verbose)
    settings = get_settings()
    public_url = f"http://127.0.0.1:{port}"
    opened = None
    if tunnel:
        from digest.tunnel_up import open_for_dev

        opened = open_for_dev(settings, port)
        public_url = opened.url
    backend_url = f"{public_url}/api/inngest"
    if settings.inngest_signing_key is not None:
        typer.echo(
            "INNGEST_SIGNING_KEY is set: digest dev's executor is a local dev "
            "server and runs unsigned, as the backend does in the dev profile; "
            "the key is for an executor elsewhere (digest serve and digest "
            "tunnel up --target backend)"
        )
    try:
        executor = stack.start_executor(
            settings.digest_home / "executor",
            port=executor_port,
            sdk_urls=[backend_url],
            # The official server's backoff (15 s, 30 s, 60 s...), not a
            # quick fixed interval: a step that meets a restarting database
            # or a backend being reloaded then gets its attempts spread over
            # minutes instead of spending them all in a few seconds.
            log_path=settings.digest_home / "executor.log",
            # Keys in the environment would put the executor in cloud mode
            # beside a dev-mode backend: every sync refused, no job run.
            env=dict.fromkeys(DEV_EXECUTOR_UNSET, ""),
            # A Ctrl-C in the terminal reaches only dev, which stops the
            # executor itself after the backend, rather than both at once.
            own_group=True,
        )
    except stack.CannotListen as exc:
        # Taken between the check above and the start.
        typer.echo(
            f"{exc}; stop what holds it or choose another port with --executor-port",
            err=True,
        )
        raise typer.Exit(2) from None
    except stack.StackError as exc:
        first = str(exc).splitlines()[0].rstrip(":")
        log = settings.digest_home / "executor.log"
        typer.echo(f"the executor did not start: {first} (log: {log})", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"executor on {executor.url} (log: {executor.log_path})")
    # uvicorn re-raises the signal that stopped it once it has shut down; a
    # handler of ours (rather than the default, which ends the process on
    # the spot) lets the `finally` below stop the executor too.
    signal.signal(signal.SIGTERM, _exit_quietly)
    from backend.app import create_app

    # The backend must send to the executor started here, whatever port it
    # was given, and be reachable at the address the executor calls.
    local = settings.model_copy(
        update={
            "inngest_base_url": executor.url,
            "public_url": public_url,
        }
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(local),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=verbose,
        )
    )

    def give_up() -> None:
        server.should_exit = True

    # An executor that exits (killed, crashed) is started again on its port
    # with its data dir, where it finds the runs in flight; a crash loop
    # stops dev instead. Not once dev is shutting down.
    watch = Watch(
        executor, on_give_up=give_up, keep_going=lambda: not server.should_exit
    )
    try:
        # uvicorn re-raises SIGINT once it has shut down; uvicorn.run
        # swallows the KeyboardInterrupt, and so does dev.
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    finally:
        watch.stop()
        if opened is not None:
            opened.tunnel.close()
            typer.echo("tunnel closed")
            opened.restore(typer.echo)
    if watch.gave_up:
        raise typer.Exit(1)
    if not server.started:
        # As uvicorn.run does when the backend could not start.
        raise typer.Exit(3)


def _exit_quietly(signum: int, _frame: object) -> None:
    raise SystemExit(0)


@app.command()
def devserver(
    host: Host = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on.", callback=_port_in_range)
    ] = 8288,
    sdk_url: Annotated[
        list[str] | None,
        typer.Option("--sdk-url", "-u", help="App URL to sync at start (repeatable)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="State folder (default: $DIGEST_HOME or ./var).")
    ] = None,
    retry_interval: Annotated[
        float | None,
        typer.Option(
            help="Fixed seconds between retries instead of the backoff table."
        ),
    ] = None,
    signing_key: Annotated[
        str | None,
        typer.Option(
            envvar="INNGEST_SIGNING_KEY",
            help="Cloud mode: sign calls, check answers and bearers "
            "(prefer the env var: flags show in `ps`).",
        ),
    ] = None,
    signing_key_fallback: Annotated[
        str | None,
        typer.Option(
            envvar="INNGEST_SIGNING_KEY_FALLBACK",
            help="Previous signing key, still accepted during a rotation.",
        ),
    ] = None,
    event_key: Annotated[
        list[str] | None,
        typer.Option(
            envvar="INNGEST_EVENT_KEY",
            help="Cloud mode: event key accepted on /e/{key} (repeatable).",
        ),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Run the embedded executor alone (speaks the Inngest SDK protocol)."""
    from devserver.config import ExecutorConfig
    from devserver.server import run
    from devserver.signing import keys_for

    if signing_key_fallback and not signing_key:
        raise typer.BadParameter(
            "needs --signing-key", param_hint="--signing-key-fallback"
        )
    try:
        keys_for(signing_key, signing_key_fallback)
    except ValueError as exc:
        # The message names a fingerprint, never the key.
        raise typer.BadParameter(str(exc)) from None
    # uvicorn would log its whole start-up before it said Errno 98.
    _refuse_busy_port(host, port)
    logs.configure(verbose)
    home = data_dir or get_settings().digest_home
    run(
        ExecutorConfig(
            host=host,
            port=port,
            data_dir=home,
            sdk_urls=list(sdk_url or []),
            retry_interval=retry_interval,
            signing_key=signing_key,
            signing_key_fallback=signing_key_fallback,
            event_keys=list(event_key or []),
        )
    )


@app.command()
def doctor(as_json: AsJson = False, service: ServiceOption = "api") -> None:
    """Check the profile, database, executor, sync, serve endpoint and event
    key, changing nothing; exit 1 if any check fails."""
    from digest.doctor import diagnose, report

    checks = diagnose(get_settings(), service=_service(service))
    raise typer.Exit(report(checks, Console(), as_json=as_json))


@config_app.command("show")
def config_show(as_json: AsJson = False, service: ServiceOption = "api") -> None:
    """Print every setting, its source (env, file, default), secrets masked."""
    from digest.config_show import show

    code = show(get_settings(), Console(), as_json=as_json, service=_service(service))
    raise typer.Exit(code)


def _service(name: str) -> Service:
    from digest.profile import SERVICES

    for service in SERVICES:
        if service == name:
            return service
    raise typer.BadParameter(
        f"{name!r} is not one of {', '.join(SERVICES)}", param_hint="--service"
    )


@tunnel_app.command("up")
def tunnel_up(
    port: Annotated[
        int | None,
        typer.Option(
            help="Local port (default: the target's).", callback=_port_in_range
        ),
    ] = None,
    target: Annotated[
        str, typer.Option(help="executor (INNGEST_BASE_URL) or backend (PUBLIC_URL).")
    ] = "executor",
    provider: Annotated[
        str | None, typer.Option(help="none, ngrok or lan (default TUNNEL_PROVIDER).")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Open a tunnel, write its URL to .env.dev.local, re-sync the app, and
    keep it open until Ctrl-C."""
    from digest.tunnel_up import run_tunnel_up

    logs.configure(verbose)
    raise typer.Exit(run_tunnel_up(get_settings(), provider, port, target))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the job store's migrations, and say which ran."""
    from backend.store import (
        DatabaseNewer,
        DatabaseUnreachable,
        Migrated,
        UnsupportedDatabase,
        create_engine,
        reach,
        upgrade,
    )

    settings = get_settings()

    async def go() -> Migrated:
        engine = create_engine(settings.database_url)
        try:
            await reach(engine)
            return await upgrade(engine)
        finally:
            await engine.dispose()

    try:
        migrated = asyncio.run(go())
    except UnsupportedDatabase as exc:
        typer.echo(f"db upgrade: {exc}", err=True)
        raise typer.Exit(2) from None
    except (DatabaseUnreachable, DatabaseNewer) as exc:
        typer.echo(f"db upgrade: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(str(migrated))


def main() -> None:
    from pydantic import ValidationError

    with contextlib.suppress(KeyboardInterrupt):
        try:
            app()
        except ValidationError as exc:
            if exc.title != "Settings":
                raise
            # A setting that cannot be read at all (TUNNEL_PROVIDER=bogus):
            # one line per setting, without the value, which may be secret.
            invalid = {
                "_".join(str(part) for part in error["loc"]).upper():
                # A validator's own sentence, without pydantic's prefix.
                str(error.get("ctx", {}).get("error") or error["msg"])
                for error in exc.errors()
            }
            if "--json" in sys.argv[1:]:
                # A script asked for JSON: it gets JSON, failures included.
                from digest.doctor import invalid_settings, report

                report(invalid_settings(invalid), Console(), as_json=True)
            else:
                for name, reason in invalid.items():
                    typer.echo(f"setting {name} is invalid: {reason}", err=True)
            raise SystemExit(2) from None
        except SettingsFileError as exc:
            # A dotenv file that is not text (a stray binary append): one
            # line naming it, as for a setting that cannot be read.
            if "--json" in sys.argv[1:]:
                from digest.doctor import fail, report

                check = fail("settings", str(exc), "save the file as UTF-8")
                report([check], Console(), as_json=True)
            else:
                typer.echo(str(exc), err=True)
            raise SystemExit(2) from None


if __name__ == "__main__":
    main()
