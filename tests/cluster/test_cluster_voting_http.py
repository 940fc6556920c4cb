"""tests/web/test_voting.py, unchanged, against the Redis Cluster (see conftest.py here)."""

import pytest

from tests.web.test_voting import *  # noqa: F403

pytestmark = pytest.mark.cluster
