"""schemathesis against /api/openapi.json: generated requests for every operation of the
document, against a real `voting serve`; no answer may be a 5xx or break the document.

The client is signed in as staff with every role and as a voter, and sends the session's
CSRF token, so requests get past the door and reach the handlers' own checks.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import _with_database
from tests.faults.rig import SECRET, Server, prepare, session_cookie
from voting import accounts, db
from voting.services import open_redis

# Examples per operation: enough to walk each body's fields, few enough for CI.
EXAMPLES = 15


@dataclass
class Live:
    url: str
    cookie: str
    csrf: str


@pytest.fixture(scope="module")
async def live(pg_admin_url, template_db, redis_url, tmp_path_factory):
    import asyncpg

    name = f"wsis_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    database_url = _with_database(pg_admin_url, name)
    prefix = f"st{uuid.uuid4().hex[:8]}"
    stage = await prepare(database_url, redis_url, prefix)
    conn = await db.connect(database_url)
    for role in ("organizer", "expert", "committee"):
        user = await accounts.grant(conn, "fuzzer@example.org", role)
    await conn.close()
    directory = tmp_path_factory.mktemp("schemathesis")
    server = Server(
        {
            "VOTING_DATABASE_URL": database_url,
            "VOTING_REDIS_URL": redis_url,
            "VOTING_REDIS_PREFIX": prefix,
            "VOTING_SECRET_KEY": SECRET,
            "VOTING_DATA_DIR": str(directory),
            "VOTING_BASE_URL": "http://testserver",
        },
        workers=1,
        log_path=directory / "serve.log",
    )
    await asyncio.to_thread(server.start)
    csrf = uuid.uuid4().hex
    voter = {"id": uuid.uuid4().hex, "d": "example.org", "e": stage.edition.slug}
    session = {"uid": user.id, "gen": user.session_generation, "voter": voter, "csrf": csrf}
    cookie = session_cookie(SECRET, session)
    try:
        yield Live(server.url, f"wsis_session={cookie}", csrf)
    finally:
        server.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        redis = open_redis(redis_url)
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def test_the_api_holds_to_its_own_document(live):
    # schemathesis' own pytest plugin does not run under pytest 9 yet: the same thing by
    # hand, one hypothesis run per operation of the document, with valid data and with
    # data that breaks the document's own rules (which must get a 4xx, not a 5xx).
    api = schemathesis.openapi.from_url(f"{live.url}/api/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15
    failures = []
    nothing_negative: list[str] = []
    for operation, mode in [(o, m) for o in operations for m in GenerationMode]:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            if case.headers and "X-CSRF-Token" in case.headers:
                case.headers["X-CSRF-Token"] = live.csrf
            case.call_and_validate(
                base_url=live.url,
                headers={"Cookie": live.cookie},
                checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
                excluded_checks=[negative_data_rejection],
            )

        try:
            check()
        except Unsatisfiable:
            # Only negative data may be impossible (an operation without parameter or body
            # has nothing to make invalid); every operation must get valid examples.
            if mode is GenerationMode.NEGATIVE:
                nothing_negative.append(operation.label)
            else:
                failures.append(f"{operation.label}: no {mode.value} example could be made")
        except (Exception, BaseExceptionGroup) as exc:  # gathered, then reported together
            failures.append(f"{operation.label} ({mode.value} data): {exc}")
    assert not failures, "\n\n".join(failures)
    # Most operations take input: the negative pass must have sent invalid data to them.
    assert len(nothing_negative) < len(operations) // 2, nothing_negative
