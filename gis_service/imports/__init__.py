"""Imports: readers per format, QA checks, and the transactional loaders."""
