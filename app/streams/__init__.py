"""The stream plumbing: the Faust app and its topics, the agents' consumers and batches, the worker entry point,
consumer lag."""
