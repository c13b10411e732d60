"""The agents a worker can run (`CART_AGENTS`), by name, and the two sides they make up. Imports nothing heavy:
`cart run` reads it to start a worker per side."""

from __future__ import annotations

AGENT_MODULES = {
    "cart_commands": "agents.cart_commands",
    "purchases": "agents.purchases",
    "popular_items": "agents.popular_items",
    "vendor_billing": "agents.vendor_billing",
    "vendor_billing_sql": "agents.vendor_billing_sql",
}
COMMAND_AGENTS = ["cart_commands"]
QUERY_AGENTS = [name for name in AGENT_MODULES if name not in COMMAND_AGENTS]


def selected_agents(spec: str) -> list[str]:
    names = list(AGENT_MODULES) if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    unknown = sorted(set(names) - set(AGENT_MODULES))
    if unknown:
        raise SystemExit(f"CART_AGENTS names unknown agents {unknown}; known: {sorted(AGENT_MODULES)}")
    return names
