"""tests/test_ballot.py, unchanged, against the Redis Cluster (see conftest.py here)."""

import pytest

from tests.test_ballot import *  # noqa: F403

pytestmark = pytest.mark.cluster
