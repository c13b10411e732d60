"""Shopping cart application: the pure cart core, settings, stores, the HTTP API and the CLI."""
