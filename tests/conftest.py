"""Fixtures any test may ask for: `database_url` (SQLite, then PostgreSQL) and `store`."""

pytest_plugins = ["tests.databases"]
