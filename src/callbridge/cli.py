"""The `callbridge` command: `serve` runs the server, `simulate` places a simulated call;
`worker` and `jobs` (in `cli_analytics`) run and inspect the post-call jobs; `calls` (in
`cli_calls`) lists and acts on live calls; `eval` (in `callbridge.evals`) runs an agent's
scenario tests; `replay` (in `callbridge.capture`) replays a captured call through the core.

Owns argument parsing, logging set-up and turning configuration errors into one line on stderr
and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from callbridge import __version__, logs
from callbridge.errors import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    try:
        if args.command == "serve":
            return _serve(args.host, args.port, args.log_level, args.with_worker,
                          workers=args.workers, reuse_port=args.reuse_port)
        if args.command == "simulate":
            return _simulate(args.wav, args.out, args.model)
        if args.command == "db":
            return _db(args.action)
        if args.command in ("call", "numbers"):
            from callbridge import cli_twilio

            return cli_twilio.run(args)
        if args.command in ("worker", "jobs"):
            from callbridge import cli_analytics

            return cli_analytics.run(args)
        if args.command == "eval":
            from callbridge.evals import command as eval_command

            return eval_command.run(args, sys.stdout)
        if args.command == "replay":
            from callbridge.capture import replay

            return replay.run(args, sys.stdout, sys.stderr)
        if args.command == "calls":
            from callbridge import cli_calls

            return cli_calls.run(args)
    except ConfigError as exc:
        print(f"callbridge: {exc}", file=sys.stderr)
        return 2
    parser.print_help()
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callbridge", description="Answer Twilio calls with an OpenAI Realtime voice agent."
    )
    parser.add_argument("--version", action="version", version=f"callbridge {__version__}")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the webhook and media-stream server")
    serve.add_argument("--host", default="0.0.0.0", help="interface to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")
    serve.add_argument("--with-worker", action="store_true",
                       help="also run the post-call analytics worker in this process (the only "
                            "way with SQLite)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes sharing the port (default 1; more need PostgreSQL)")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    simulate = commands.add_parser(
        "simulate", help="place a simulated call through the full Twilio path, locally"
    )
    simulate.add_argument("--wav", type=Path, help="what the caller says (a WAV file)")
    simulate.add_argument("--model", help="the agent's model, e.g. gpt-live-1.1 for GPT-Live "
                                          "(default: CALLBRIDGE_MODEL or gpt-realtime-2.1)")
    simulate.add_argument("--out", type=Path, default=Path("simulated-call.wav"),
                          help="where to write what the caller heard")
    from callbridge import cli_twilio

    cli_twilio.add_commands(commands)
    from callbridge import cli_analytics

    cli_analytics.add_commands(commands)
    from callbridge.evals import command as eval_command

    eval_command.add_command(commands)
    from callbridge.capture import replay

    replay.add_command(commands)
    from callbridge import cli_calls

    cli_calls.add_commands(commands)
    db = commands.add_parser("db", help="manage the call record's database schema")
    db.add_argument("action", choices=["upgrade", "current"],
                    help="upgrade: apply pending migrations; current: show the schema revision")
    return parser


def _db(action: str) -> int:
    from callbridge.config import load_settings
    from callbridge.store import migrate
    from callbridge.store.database import describe

    url = load_settings(serving=False).database_url
    if url is None:
        raise ConfigError("DATABASE_URL=none: there is no database to manage")
    if action == "upgrade":
        migrate.upgrade(url)
        print(f"{describe(url)} is at revision {migrate.head_revision()}")
        return 0
    current = asyncio.run(migrate.current_revision(url))
    head = migrate.head_revision()
    print(f"{describe(url)}: at {current or 'nothing (empty)'}, latest is {head}")
    return 0 if current == head else 1


def _serve(host: str, port: int, log_level: str, with_worker: bool = False, *,
           workers: int = 1, reuse_port: bool = False) -> int:
    from callbridge.config import load_settings
    from callbridge.server.app import create_app
    from callbridge.server.drain import DrainingServer
    from callbridge.server.runner import uvicorn_config

    settings = load_settings()
    if settings.database_url is not None:
        from callbridge.store.database import describe
        from callbridge.store.migrate import prepare_for_serving

        if asyncio.run(prepare_for_serving(settings.database_url)):
            print(f"callbridge: created the call record in the new database "
                  f"{describe(settings.database_url)}", file=sys.stderr)
    if with_worker:
        from callbridge.analytics.service import check_settings

        if settings.database_url is None:
            raise ConfigError("--with-worker needs the call record (DATABASE_URL is none)")
        check_settings(settings)
    if workers != 1:
        return _supervise(workers, host, port, log_level, with_worker, settings.database_url,
                          settings.instance_id)
    app = create_app(settings, with_worker=with_worker)
    server = DrainingServer(uvicorn_config(app, host, port, log_level), app.state.callbridge,
                            settings.drain_seconds)
    if reuse_port:  # one of `--workers` processes (server.workers)
        from callbridge.server.workers import reuse_port_socket

        server.run(sockets=[reuse_port_socket(host, port)])
    else:
        server.run()
    return 0 if server.started else 1


def _supervise(workers: int, host: str, port: int, log_level: str, with_worker: bool,
               database_url: str | None, instance_id: str) -> int:
    from callbridge.server.workers import Supervisor

    if not 1 <= workers <= 64:
        raise ConfigError(f"--workers {workers}: must be between 1 and 64")
    if database_url is None or not database_url.startswith(("postgresql", "postgres")):
        raise ConfigError("--workers needs PostgreSQL (DATABASE_URL=postgresql://...): each "
                          "worker is an instance, and instances share calls through it")
    try:
        supervisor = Supervisor(workers, host, port, log_level, instance_id, with_worker)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return supervisor.run()


def _simulate(wav: Path | None, out: Path, model: str | None = None) -> int:
    from callbridge.simulate import simulate

    if wav is not None and not wav.is_file():
        raise ConfigError(f"--wav {wav}: no such file")
    for name in ("callbridge", "websockets", "httpx", "uvicorn"):
        logging.getLogger(name).setLevel(logging.WARNING)
    asyncio.run(simulate(wav=wav, out=out, model=model))
    return 0
