"""The HTTP API (FastAPI): the original's cart routes, the journal's history, health, readiness and metrics.
Routes only turn HTTP into a command and hand it to the command bus; they never write a store themselves."""
