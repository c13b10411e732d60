"""Connections to the stores and their migrations (topics, keyspace and tables, PostgreSQL tables)."""
