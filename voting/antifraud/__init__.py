"""Fraud: inline checks on the hot path, checks at verification, offline detectors,
quarantine with committee review, and the traffic simulator that measures all of it."""
