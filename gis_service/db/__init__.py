"""Database: the engine, the project-local cluster and the Alembic migrations."""
