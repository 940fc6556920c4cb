"""The HTTP layer: thin handlers over the contest's rules."""
