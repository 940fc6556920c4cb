"""The Merkle tree: RFC 6962's tree hash, proofs for every leaf, none for a stranger."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from voting.tally.merkle import Tree
from voting.tally.verify import EMPTY_ROOT, merkle_root, node_hash, root_from_path


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962, 2.1, written out independently: split at the largest power of two
    below n, recursively (leaves here are already leaf hashes)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(rfc6962_root(leaves[:k]), rfc6962_root(leaves[k:]))


hashes = st.lists(st.binary(min_size=32, max_size=32), unique=True, max_size=70)


@settings(max_examples=150)
@given(hashes)
def test_the_tree_is_rfc_6962_over_the_sorted_leaves(leaves: list[bytes]) -> None:
    tree = Tree(leaves)
    assert tree.root == rfc6962_root(sorted(leaves)) == merkle_root(list(reversed(leaves)))


@settings(max_examples=100)
@given(hashes.filter(bool), st.binary(min_size=32, max_size=32))
def test_every_leaf_has_a_proof_and_a_stranger_has_none(
    leaves: list[bytes], stranger: bytes
) -> None:
    tree = Tree(leaves)
    for index, leaf in enumerate(tree.levels[0]):
        path = tree.proof(index)
        assert root_from_path(leaf, path) == tree.root
        if stranger not in leaves:
            assert root_from_path(stranger, path) != tree.root


def test_the_empty_tree() -> None:
    assert Tree([]).root == hashlib.sha256(b"").digest() == merkle_root([])
