"""Persistence for the server: tables, migrations, and the engine."""
