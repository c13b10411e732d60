"""The shopping cart, by part: `cart` (the rules, pure), `command_side`, `query_side`, `streams` (Faust and Kafka
plumbing), `stores` (connections, migrations), `api` (HTTP), `tools` (the `cart` CLI and the operator's tools);
`settings` and `runtime` (the one place that wires settings to stores)."""
