"""The operator's tools: the `cart` CLI, the interactive shell, the service installer, the bench."""
