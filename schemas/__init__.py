"""Wire formats: the Faust records that travel on the internal topics and the JSON Schemas of the public ones
(`item-purchased`), versioned with `schemaVersion`."""
