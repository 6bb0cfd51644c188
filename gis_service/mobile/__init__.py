"""The grid worker's phone app at /m/: an installable offline-first web app."""
