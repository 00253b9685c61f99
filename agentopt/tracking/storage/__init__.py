"""Where records and cached responses live: memory, SQLite, PostgreSQL."""
