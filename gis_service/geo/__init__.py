"""Coordinates and geometry helpers. Imports nothing from the web or the database."""
