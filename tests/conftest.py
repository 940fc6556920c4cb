"""The suite's fixtures live in tests/fixtures/ (a package), registered here once.

Test modules import helpers from tests.fixtures, never from another test module; the
fixtures below are available to every test without an import.
"""

pytest_plugins = ["tests.fixtures.services"]
