"""The browser suite's session fixtures: Chromium and the two sites (tests/fixtures/browser.py).

Imported here rather than registered at the root, so that only this folder needs Playwright.
"""

from tests.fixtures.browser import browser, nominating_site, voting_site

__all__ = ["browser", "nominating_site", "voting_site"]
