"""Every CLI command on a fresh database (a new data dir): it migrates first, then does
its work or says in one line what is missing; never a traceback."""

import os
import subprocess
import sys
import uuid

import pytest
import redis

from voting import db

COMMANDS = [
    (["fraud", "simulate", "--organic", "60"], 0, "attack votes kept out: "),
    (["fraud", "scan"], 2, "error: no edition is loaded"),
    (["flush", "--once"], 0, "flushed 0 new votes"),
    (["reconcile"], 2, "error: no edition is loaded"),
    (["edition", "list"], 0, ""),
    (["rehearsal", "list"], 0, ""),
    (["results", "status"], 2, "error:"),
    (["tally"], 2, "error:"),
    (["privacy", "purge", "--dry-run"], 0, "due: fraud signals of 0 votes and 0 voters"),
    (["privacy", "purge"], 0, "erased: fraud signals of 0 votes and 0 voters, 0 delivered"),
]


def _run(args, database_url, redis_url, prefix, data_dir):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VOTING_")},
        "VOTING_DATABASE_URL": database_url,
        "VOTING_REDIS_URL": redis_url,
        "VOTING_REDIS_PREFIX": prefix,
        "VOTING_DATA_DIR": str(data_dir),
        "VOTING_SECRET_KEY": "k" * 40,
    }
    return subprocess.run(
        [sys.executable, "-m", "voting.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(("args", "code", "says"), COMMANDS, ids=lambda v: str(v))
def test_a_command_on_a_fresh_database_migrates_first(
    args, code, says, empty_database_url, redis_url, tmp_path
):
    prefix = f"t{uuid.uuid4().hex[:10]}"
    try:
        done = _run(args, empty_database_url, redis_url, prefix, tmp_path)
    finally:
        client = redis.Redis.from_url(redis_url)
        try:  # this test's prefix only: the Redis is shared
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == code, output
    assert "migrated: 0001_" in done.stderr, output
    assert says in output, output
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == (1 if code else 0), output


async def test_a_role_that_may_not_migrate_is_told_what_to_run(
    empty_database_url, redis_url, tmp_path
):
    """A login role without the right to create tables, on a schema not yet migrated:
    one line naming `voting migrate`, exit 2."""
    role = f"t_cli_{uuid.uuid4().hex[:8]}"
    conn = await db.connect(empty_database_url)
    try:
        await conn.execute(f"CREATE ROLE {role} LOGIN")
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        await conn.close()
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(empty_database_url)
    netloc = f"{role}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    as_role = urlunsplit(parts._replace(netloc=netloc))
    try:
        import asyncio

        done = await asyncio.to_thread(
            _run, ["flush", "--once"], as_role, redis_url, f"t{uuid.uuid4().hex[:10]}", tmp_path
        )
    finally:
        conn = await db.connect(empty_database_url)
        try:
            await conn.execute(f"DROP OWNED BY {role}")
            await conn.execute(f"DROP ROLE {role}")
        finally:
            await conn.close()
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == 2, output
    assert "run `voting migrate` as the schema owner" in done.stderr, output
