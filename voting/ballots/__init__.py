"""Ballots: the rules of one vote (casting)."""
