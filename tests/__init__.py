"""The test suite, as folders: `unit/` (the pure cart rules and codecs, no I/O), `integration/` (real Kafka,
Cassandra and PostgreSQL: the journal's contract, the services, the worker process), `e2e/` (over HTTP and the
CLI, against real workers and the API that the tests start and kill). `make test` runs them all."""
