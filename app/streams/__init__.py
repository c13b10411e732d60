"""The stream plumbing: the Faust app and its topics, the in-order guard, the worker entry point, consumer lag."""
