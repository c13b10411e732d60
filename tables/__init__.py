"""The changelog-backed Faust tables the agents keep (RocksDB locally, a Kafka changelog for recovery),
co-partitioned with the topics that feed them."""
