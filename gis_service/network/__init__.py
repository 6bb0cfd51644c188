"""The walking network: storage of a noded, pgRouting-ready graph."""
