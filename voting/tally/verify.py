#!/usr/bin/env python3
"""Check a WSIS Prizes ledger export or a vote's inclusion proof, offline.

This file needs nothing but Python 3.8 or newer: copy it anywhere and run

    python3 verify.py results-ledger.json [--root HEX]   # recount every vote, check the root
    python3 verify.py receipt-proof.json [--root HEX]    # check one vote is in the tally

(with the engine installed, `voting verify FILE` and `python -m voting.tally.verify FILE`
run this same file). Give `--root` the fingerprint printed on the public results page:
a file can only vouch for itself, the published root ties it to what was announced.
Exit status 0 means every check passed, 1 that one failed, 2 that the file is unreadable.

The fingerprint (the Merkle root of the counted votes):

- Each counted vote is the triple (receipt, category, nomination). Its receipt digest is
  d = SHA-256(receipt in UTF-8), written as 64 lower-case hex digits.
- Its leaf hash is SHA-256(0x00 || "d category nomination"): one byte 0x00, then the
  three fields in UTF-8 separated by single spaces (no field can contain a space).
- The leaves are sorted by leaf hash, so the order votes arrived in does not matter.
- Neighbouring nodes are paired level by level: parent = SHA-256(0x01 || left || right);
  an odd last node moves up a level unchanged. This is RFC 6962's Merkle Tree Hash over
  the sorted leaves; the 0x00 and 0x01 prefixes keep a leaf from passing for a node.
  An empty tree's root is SHA-256 of nothing.

An export lists every leaf as [d, category, nomination] with the official count of each
nomination: this script recomputes every leaf hash, every count and the root. A proof
gives one receipt with the sibling hashes on the path from its leaf to the root, each
marked L (the sibling is on the left) or R.

A leaf reveals no voter: only a receipt's digest is published, and a receipt is 80
random bits. But a receipt proves a vote to whoever holds it: anyone shown a receipt can
check which nomination it voted for. For a prize vote that is acceptable; what defends
against bought or ordered votes is the fraud layer (rate limits, detectors, quarantine),
not the secrecy of receipts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from typing import Any

EXPORT_FORMAT = "wsis-ledger-export/1"
PROOF_FORMAT = "wsis-inclusion-proof/1"
EMPTY_ROOT = hashlib.sha256(b"").digest()
_FIELD = re.compile(r"\S+")


def receipt_digest(receipt: str) -> str:
    return hashlib.sha256(receipt.encode("utf-8")).hexdigest()


def leaf_hash(digest: str, category: str, nomination: str) -> bytes:
    for part in (digest, category, nomination):
        # A space inside a field would make two different triples encode alike.
        if not isinstance(part, str) or not _FIELD.fullmatch(part):
            raise ValueError(f"a leaf field must be non-empty and without spaces: {part!r}")
    return trusted_leaf_hash(digest, category, nomination)


def trusted_leaf_hash(digest: str, category: str, nomination: str) -> bytes:
    """`leaf_hash` without the checks, for fields already known to be well formed."""
    return hashlib.sha256(b"\x00" + f"{digest} {category} {nomination}".encode()).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """The root over leaf hashes (sorted here, so any order gives the same root)."""
    level = sorted(leaves)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        up = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            up.append(level[-1])
        level = up
    return level[0]


def root_from_path(leaf: bytes, path: list[list[str]]) -> bytes:
    node = leaf
    for side, sibling_hex in path:
        sibling = bytes.fromhex(sibling_hex)
        if len(sibling) != 32 or side not in ("L", "R"):
            raise ValueError(f"bad path step {[side, sibling_hex]!r}")
        node = node_hash(sibling, node) if side == "L" else node_hash(node, sibling)
    return node


def check_export(data: dict[str, Any], root: str | None = None) -> list[str]:
    """Problems found in a ledger export (an empty list when it checks out)."""
    problems: list[str] = []
    hashes: list[bytes] = []
    counts: Counter[str] = Counter()
    for index, leaf in enumerate(data.get("leaves", [])):
        try:
            digest, category, nomination = leaf
            if len(bytes.fromhex(digest)) != 32:
                raise ValueError("a receipt digest is 64 hex digits")
            hashes.append(leaf_hash(digest, category, nomination))
        except (TypeError, ValueError) as exc:
            problems.append(f"leaf {index} is malformed ({exc}): {leaf!r}")
            continue
        counts[nomination] += 1
    if len(set(hashes)) != len(hashes):
        problems.append("the export lists the same vote more than once")
    if data.get("leaf_count") != len(hashes):
        problems.append(f"leaf_count says {data.get('leaf_count')}, the export has {len(hashes)}")
    claimed = data.get("counts", {})
    for nomination in sorted(set(claimed) | set(counts)):
        if claimed.get(nomination, 0) != counts.get(nomination, 0):
            problems.append(
                f"{nomination}: the export claims {claimed.get(nomination, 0)} votes,"
                f" its leaves hold {counts.get(nomination, 0)}"
            )
    computed = merkle_root(hashes).hex()
    if computed != data.get("merkle_root"):
        problems.append(f"root {data.get('merkle_root')} claimed, {computed} computed")
    if root is not None and computed != root.lower():
        problems.append(f"the leaves give root {computed}, not the published {root.lower()}")
    return problems


def check_proof(data: dict[str, Any], root: str | None = None) -> list[str]:
    problems: list[str] = []
    try:
        leaf = leaf_hash(receipt_digest(data["receipt"]), data["category"], data["nomination"])
        computed = root_from_path(leaf, data["path"]).hex()
    except (KeyError, TypeError, ValueError) as exc:
        return [f"the proof is malformed: {exc}"]
    if computed != data.get("merkle_root"):
        problems.append(f"the path leads to {computed}, not to the root {data.get('merkle_root')}")
    if root is not None and computed != root.lower():
        problems.append(f"the path leads to {computed}, not to the published root {root.lower()}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="a ledger export or an inclusion proof (JSON)")
    parser.add_argument("--root", help="the fingerprint published on the results page")
    args = parser.parse_args(argv)
    try:
        with open(args.file, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    kind = data.get("format") if isinstance(data, dict) else None
    if kind == EXPORT_FORMAT:
        problems = check_export(data, args.root)
        if not problems:
            counts = data.get("counts", {})
            for nomination in sorted(counts, key=lambda n: (-counts[n], n)):
                print(f"{nomination:12} {counts[nomination]:>10}")
            print(f"{data['leaf_count']} counted votes; root {data['merkle_root']}")
    elif kind == PROOF_FORMAT:
        problems = check_proof(data, args.root)
        if not problems:
            print(
                f"receipt {data['receipt']}: a vote for {data['nomination']} in"
                f" {data['category']}, included under root {data['merkle_root']}"
            )
    else:
        print(
            f"{args.file} is neither a {EXPORT_FORMAT} nor a {PROOF_FORMAT} file", file=sys.stderr
        )
        return 2
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print(
            "OK: every check passed"
            + ("" if args.root else " (give --root to compare with the published fingerprint)")
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
