"""tests/test_ledger.py, unchanged, against the Redis Cluster (see conftest.py here)."""

import pytest

from tests.test_ledger import *  # noqa: F403

pytestmark = pytest.mark.cluster
