"""End-to-end tests: `python -m bot` as a subprocess against the stand-in servers."""
