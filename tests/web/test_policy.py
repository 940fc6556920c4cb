"""web/policy.py's request id: a proxy's plain id kept, else a fresh random one."""

import re

from voting.web import policy


def test_a_plain_id_from_the_proxy_is_kept():
    assert policy.request_id("lb-7f3a.01:x/y+z=") == "lb-7f3a.01:x/y+z="


def test_a_missing_or_unusual_id_is_replaced_by_a_fresh_one():
    ids = [policy.request_id(given) for given in [None, "", "a b", "x" * 129, "é"] * 100]
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids)
    assert len(set(ids)) == len(ids)  # drawn from several pools: never one twice
