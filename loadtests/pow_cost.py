"""What one step-up challenge costs its solver, at an edition's difficulty, on this machine.

    python -m loadtests.pow_cost [--max-number N] [--runs R]

Issues R challenges as the engine does (voting/antifraud/challenge.py) and solves each
two ways on one core: with the `altcha` library's own solver (a Python client), and
with a tight hashlib loop (close to what a farm's native code does per core: one
SHA-256 per try). The counter is drawn uniformly below N, so a solve tries N/2 hashes
on average. Prints the mean time per solve and the hash rate.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import struct
import time

import altcha

from voting.antifraud.challenge import Challenges
from voting.antifraud.config import DEFAULTS


def _tight(challenge: dict) -> int:
    params = challenge["parameters"]
    salt = bytes.fromhex(params["salt"])
    nonce = bytes.fromhex(params["nonce"])
    prefix = bytes.fromhex(params["keyPrefix"])
    head = hashlib.sha256(salt + nonce)
    pack = struct.Struct(">I").pack
    counter = 0
    while True:
        h = head.copy()
        h.update(pack(counter))
        if h.digest().startswith(prefix):
            return counter
        counter += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-number", type=int, default=DEFAULTS.challenge_max_number)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    issuer = Challenges("k" * 40, None, "pow")  # type: ignore[arg-type]  # no Redis needed
    library, tight, counters = [], [], []
    for _ in range(args.runs):
        challenge = issuer.issue("vote", "x", max_number=args.max_number, expires_s=600)
        start = time.perf_counter()
        solution = altcha.solve_challenge(altcha.Challenge.from_dict(challenge))
        library.append(time.perf_counter() - start)
        assert solution is not None
        start = time.perf_counter()
        found = _tight(challenge)
        tight.append(time.perf_counter() - start)
        assert found == solution.counter
        counters.append(found)
    tries = sum(counters) + len(counters)
    print(
        f"max_number {args.max_number}, {args.runs} challenges, mean counter "
        f"{statistics.mean(counters):,.0f}"
    )
    for name, times in (("altcha library solver", library), ("tight hashlib loop", tight)):
        print(
            f"{name}: {statistics.mean(times):.3f} s per solve (median "
            f"{statistics.median(times):.3f} s), {tries / sum(times):,.0f} hashes/s, one core"
        )


if __name__ == "__main__":
    main()
