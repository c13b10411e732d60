"""The query side: projections of the journal's events, the read-model stores, rebuild and verify."""
