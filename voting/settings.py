"""Every setting, read from the environment (prefix VOTING_), with safe defaults.

In development a missing secret is generated once and kept in the data dir, and missing
server URLs mean "start the embedded PostgreSQL and Redis". With VOTING_ENV=production
the same gaps are start-up errors: a production deployment must say what it uses.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


# The ASGI servers `voting serve` can run (voting/asgi_server.py starts each); the first
# is the default: uvicorn spends less CPU a vote, granian more (README, "The ASGI server
# as a lever").
ASGI_SERVERS = ("uvicorn", "granian")


def asgi_server(env: dict[str, str]) -> str:
    """VOTING_SERVER, checked (the default when unset)."""
    raw = (env.get("VOTING_SERVER") or ASGI_SERVERS[0]).strip().lower()
    if raw not in ASGI_SERVERS:
        raise SettingsError(f"VOTING_SERVER must be one of {', '.join(ASGI_SERVERS)}, got {raw!r}")
    return raw


def _forwarded_allow_ips(env: dict[str, str]) -> str:
    """VOTING_FORWARDED_ALLOW_IPS, checked: addresses and networks (CIDR), or `*` alone.

    A malformed entry would otherwise never match (uvicorn keeps it as a literal), and a
    network of every address would believe whatever a client writes first."""
    name = "VOTING_FORWARDED_ALLOW_IPS"
    raw = (env.get(name) or "127.0.0.1").strip()
    if raw == "*":
        return raw
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    if not entries:
        raise SettingsError(f"{name} must list the load balancers' addresses or networks")
    for entry in entries:
        if entry == "*":
            raise SettingsError(
                f"{name}: `*` (trust the one proxy in front, whatever its address) stands "
                f"alone; list the load balancers' addresses or networks instead, got {raw!r}"
            )
        try:
            network = ipaddress.ip_network(entry) if "/" in entry else ipaddress.ip_address(entry)
        except ValueError as exc:
            raise SettingsError(
                f"{name}: {entry!r} is not an IP address or network such as 10.0.0.0/8 "
                f"({exc}); list the load balancers' addresses or networks"
            ) from None
        if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network) and (
            network.prefixlen == 0
        ):
            raise SettingsError(
                f"{name}: {entry!r} trusts every address, so any client could name its own; "
                "list the load balancers' addresses or networks (or `*` for exactly one "
                "proxy in front)"
            )
    return ",".join(entries)


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    data_dir: Path = field(default_factory=lambda: Path(".data").resolve())
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # The ASGI server of `voting serve` (ASGI_SERVERS).
    server: str = ASGI_SERVERS[0]
    base_url: str = "http://127.0.0.1:8000"
    # Every Redis key starts with this, so several editions' engines or test runs can
    # share one Redis without seeing each other's keys.
    redis_prefix: str = "wsis"
    db_pool_min: int = 2
    db_pool_max: int = 10
    redis_pool_max: int = 64
    # How long a request waits for a free Redis connection when all are busy, then 503 with
    # Retry-After: a vote takes well under a millisecond of Redis time, so a second of
    # waiting means the process is overloaded and the voter is better told to come back.
    redis_pool_timeout: float = 1.0
    # A command on a Redis that stopped answering fails after this long (503), never hangs.
    redis_timeout: float = 5.0
    smtp_url: str | None = None
    mail_from: str = "WSIS Prizes <no-reply@wsis.invalid>"
    # Background tasks (flusher, mail sender) run inside `serve` unless turned off,
    # e.g. when they run as processes of their own.
    background_tasks: bool = True
    # A flusher takes over another's unacknowledged entries once they are this old: a
    # flusher that died between its commit and its acknowledgement costs this much delay.
    flush_claim_idle_ms: int = 30_000
    max_body_bytes: int = 64 * 1024
    trust_proxy_headers: bool = False
    # The proxies whose X-Forwarded-For/-Proto are believed: addresses and networks
    # (comma list), or "*" for exactly one proxy in front whatever its address (the
    # client is then the rightmost X-Forwarded-For entry). Checked by load_settings.
    forwarded_allow_ips: str = "127.0.0.1"
    # All request headers together; larger gets 431 before any handler runs.
    max_header_bytes: int = 16 * 1024
    # A bearer token that lets a scraper read /metrics; without one, only signed-in
    # organizers and (outside production) the machine itself may, as the figures show
    # vote flows.
    metrics_token: str | None = None

    @property
    def production(self) -> bool:
        return self.env == "production"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    mode = env.get("VOTING_ENV", "development").strip().lower() or "development"
    if mode not in {"development", "production", "test"}:
        raise SettingsError(f"VOTING_ENV must be development, production or test, got {mode!r}")
    data_dir = Path(env.get("VOTING_DATA_DIR") or ".data").expanduser().resolve()
    database_url = env.get("VOTING_DATABASE_URL") or None
    redis_url = env.get("VOTING_REDIS_URL") or None
    secret = env.get("VOTING_SECRET_KEY") or ""
    if mode == "production":
        missing = [
            name
            for name, value in (
                ("VOTING_DATABASE_URL", database_url),
                ("VOTING_REDIS_URL", redis_url),
                ("VOTING_SECRET_KEY", secret),
            )
            if not value
        ]
        if missing:
            raise SettingsError(
                "VOTING_ENV=production needs " + ", ".join(missing) + " in the environment"
            )
        if len(secret) < 32:
            raise SettingsError("VOTING_SECRET_KEY must be at least 32 characters in production")
    elif not secret:
        secret = _development_secret(data_dir)
    host = env.get("VOTING_HOST") or "127.0.0.1"
    port = _int(env, "VOTING_PORT", 8000)
    return Settings(
        env=mode,
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=secret,
        host=host,
        port=port,
        workers=_int(env, "VOTING_WORKERS", 1),
        server=asgi_server(env),
        base_url=(env.get("VOTING_BASE_URL") or f"http://{host}:{port}").rstrip("/"),
        redis_prefix=env.get("VOTING_REDIS_PREFIX") or "wsis",
        db_pool_min=_int(env, "VOTING_DB_POOL_MIN", 2),
        db_pool_max=_int(env, "VOTING_DB_POOL_MAX", 10),
        redis_pool_max=_int(env, "VOTING_REDIS_POOL_MAX", 64),
        redis_pool_timeout=_float(env, "VOTING_REDIS_POOL_TIMEOUT", 1.0),
        redis_timeout=_float(env, "VOTING_REDIS_TIMEOUT", 5.0),
        smtp_url=env.get("VOTING_SMTP_URL") or None,
        mail_from=env.get("VOTING_MAIL_FROM") or "WSIS Prizes <no-reply@wsis.invalid>",
        background_tasks=_bool(env, "VOTING_BACKGROUND_TASKS", True),
        flush_claim_idle_ms=_int(env, "VOTING_FLUSH_CLAIM_IDLE_MS", 30_000),
        max_body_bytes=_int(env, "VOTING_MAX_BODY_BYTES", 64 * 1024),
        trust_proxy_headers=_bool(env, "VOTING_TRUST_PROXY_HEADERS", False),
        forwarded_allow_ips=_forwarded_allow_ips(env),
        max_header_bytes=_int(env, "VOTING_MAX_HEADER_BYTES", 16 * 1024),
        metrics_token=env.get("VOTING_METRICS_TOKEN") or None,
    )


def _development_secret(data_dir: Path) -> str:
    """Generate the development secret once and keep it, so sessions survive restarts."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Write aside, then link into place: link fails if another worker won the race, and
    # the winner's file is complete by then, so every worker agrees on one secret.
    tmp = data_dir / f".secret_key.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    try:
        os.link(tmp, path)
    except FileExistsError:
        secret = path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return secret
