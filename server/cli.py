"""The `inkgraph` command line: serve, migrate, seed, create-editor, export-schema, schema-diff.

Flags override the environment (`DATABASE_URL`, `HOST`, `PORT`); each command builds one
`Settings` and calls one function.
"""

import argparse
import asyncio
import gc
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.settings import Settings

# Setting name -> how the operator spells it, for error messages.
_SOURCES = {
    "database_url": "DATABASE_URL / --database-url",
    "host": "HOST / --host",
    "port": "PORT / --port",
}


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("database_url", "host", "port"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
    from server.store.engine import make_engine

    async def run() -> Any:
        engine = make_engine(settings)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def tune_gc() -> None:
    """Make the garbage collector fit a server that allocates thousands of short-lived objects
    per request (rows, GraphQL results, futures).

    `freeze()` moves everything built at start-up (modules, the schema) out of the collector's
    sight, so full collections stop re-scanning it; a larger first-generation threshold means
    far fewer collections per request. `make bench` on SQLite: 50 articles with comments went
    from 9 to 17 requests/s, 100 users with posts from 36 to 40.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


# What `--workers` children import: each builds its own app (and engine, and pool) from the
# environment, which the parent has completed with the command line's overrides.
WORKER_APP = "server.cli:worker_app"
WORKER_HEALTHCHECK_SECONDS = 60
# Files a server holds besides client sockets: modules, logs, the event loop's own descriptors.
OPEN_FILES_RESERVE = 128


def worker_app() -> Any:
    """The app factory of one `--workers` child process."""
    from server.app import create_app

    app = create_app(Settings())
    tune_gc()
    return app


def _open_files_for(settings: Settings) -> None:
    """Make room for HTTP_MAX_CONNECTIONS sockets plus the pool and the process's own files."""
    from server.httplimits import raise_open_files_limit

    if not settings.http_max_connections:
        return
    needed = settings.http_max_connections + settings.db_pool_size + settings.db_max_overflow
    needed += OPEN_FILES_RESERVE
    soft, _hard = raise_open_files_limit(needed)
    if soft < needed:
        logging.getLogger("inkgraph").warning(
            "open files limited to %d: fewer than HTTP_MAX_CONNECTIONS=%d connections fit "
            "(raise the hard limit, ulimit -Hn, or lower HTTP_MAX_CONNECTIONS)",
            soft,
            settings.http_max_connections,
        )


def serve_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run` for `settings`."""
    from server.httplimits import uvicorn_options

    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        "access_log": settings.log_access,
        "proxy_headers": False,
        **uvicorn_options(settings),
    }


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app

    settings = _settings(args)
    _open_files_for(settings)
    options = serve_options(settings)
    if args.workers > 1:
        # Children are spawned, not forked: they read their settings from the environment.
        for name in ("database_url", "host", "port"):
            if getattr(args, name, None) is not None:
                os.environ[name.upper()] = str(getattr(settings, name))
        uvicorn.run(
            WORKER_APP,
            factory=True,
            workers=args.workers,
            # uvicorn replaces a child that misses its 5 s health check (answered by a thread:
            # it detects a dead process, not a busy loop). A child still importing on a busy
            # machine missed it and was replaced in a loop.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **options,
        )
        return 0
    app = create_app(settings)
    tune_gc()
    uvicorn.run(app, **options)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from server.store.migrate import upgrade

    settings = _settings(args)
    _with_engine(settings, upgrade)
    print(f"database at {settings.async_url().render_as_string(hide_password=True)} is up to date")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from server.app import auth_config
    from server.store.seed import EDITOR, READER, seed

    settings = _settings(args)
    passwords = auth_config(settings).passwords
    if _with_engine(settings, lambda engine: seed(engine, passwords)):
        print(
            "demo data inserted; log in as editor "
            f"{EDITOR[0]!r} / {EDITOR[1]!r} or as reader {READER[0]!r} / {READER[1]!r}"
        )
    else:
        print("database already has users; demo data not inserted")
    return 0


def cmd_create_editor(args: argparse.Namespace) -> int:
    from server.store.engine import transaction
    from server.store.writes import set_editor

    async def grant(engine: AsyncEngine) -> bool:
        async with transaction(engine) as connection:
            return await set_editor(connection, args.username)

    if not _with_engine(_settings(args), grant):
        print(
            f"no user is named {args.username!r} (sign up first with createUser)", file=sys.stderr
        )
        return 1
    print(f"{args.username!r} is now an editor")
    return 0


def cmd_export_schema(args: argparse.Namespace) -> int:
    from strawberry.printer import print_schema

    from server.api.schema import build_schema

    sdl = print_schema(build_schema()) + "\n"
    if args.output:
        Path(args.output).write_text(sdl, encoding="utf-8")
        print(f"schema written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(sdl)
    return 0


def cmd_schema_diff(args: argparse.Namespace) -> int:
    from server.schema_diff import SchemaSourceError, diff_schemas, load_sdl, served_sdl

    new_name = args.against or "the schema served now"
    try:
        base_sdl = load_sdl(args.base, path_in_revision=args.path)
        new_sdl = load_sdl(args.against) if args.against else served_sdl()
        diff = diff_schemas(base_sdl, new_sdl, base=args.base, new=new_name)
    except SchemaSourceError as error:
        print(f"inkgraph: error: schema-diff: {error}", file=sys.stderr)
        return 2
    print(diff.report(args.base, new_name))
    return 1 if diff.breaking else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inkgraph", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str,
        handler: Callable[[argparse.Namespace], int],
        help_text: str,
        *,
        database: bool = True,
        network: bool = False,
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if database:
            sub.add_argument(
                "--database-url",
                help="overrides DATABASE_URL "
                "(default: sqlite:///inkgraph.db in the working directory)",
            )
        if network:
            sub.add_argument("--host", help="overrides HOST (default 127.0.0.1)")
            sub.add_argument("--port", type=int, help="overrides PORT (default 8000)")
        sub.set_defaults(handler=handler)
        return sub

    serve = command("serve", cmd_serve, "serve GraphQL over HTTP", network=True)
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes sharing the port (default 1); each has its own database pool",
    )
    command("migrate", cmd_migrate, "apply database migrations (creates tables, not databases)")
    command("seed", cmd_seed, "insert demo data into an empty database")
    editor = command(
        "create-editor",
        cmd_create_editor,
        "grant the editor right (manage articles) to an existing user",
    )
    editor.add_argument("username", help="the user's name, in any case")
    export = command("export-schema", cmd_export_schema, "print the GraphQL SDL", database=False)
    export.add_argument("-o", "--output", help="write the SDL to this file instead")
    diff = command(
        "schema-diff",
        cmd_schema_diff,
        "report breaking and dangerous changes since BASE; exit 1 if any is breaking",
        database=False,
    )
    diff.add_argument("base", metavar="BASE", help="an SDL file, or a git revision (origin/main)")
    diff.add_argument(
        "--against", metavar="FILE", help="compare with this SDL file (default: the served schema)"
    )
    diff.add_argument(
        "--path",
        default="schema.graphql",
        help="the SDL file inside a git revision, relative to here (default: schema.graphql)",
    )
    return parser


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _invalid_settings(error: ValidationError) -> str:
    # Only the messages: pydantic's own text repeats the input, which may hold a password.
    return "; ".join(
        f"{_SOURCES.get(str(e['loc'][0]), str(e['loc'][0]).upper()) if e['loc'] else 'settings'}: "
        f"{e['msg'].removeprefix('Value error, ')}"
        for e in error.errors()
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Bad settings exit with 2 and an unreachable or failing database with 1,
    each with a one-line message instead of a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # start-up chatter
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ValidationError as error:
        parser.exit(2, f"inkgraph: error: invalid setting: {_invalid_settings(error)}\n")
    except (OSError, DBAPIError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        parser.exit(1, f"inkgraph: error: database: {first_line}\n")
