"""The Faust worker entry point: `faust -A app.worker worker`.

`CART_AGENTS` chooses which agents this process runs (comma-separated names, or `all`), so the command side and
each read-model hydrator can be deployed and scaled apart without a fork of the code.
"""

from __future__ import annotations

import importlib

from app.streams.faust_app import app, settings

AGENT_MODULES = {
    "cart_commands": "agents.cart_commands",
    "purchases": "agents.purchases",
    "popular_items": "agents.popular_items",
    "vendor_billing": "agents.vendor_billing",
    "vendor_billing_sql": "agents.vendor_billing_sql",
    "item_purchased": "agents.item_purchased",
}


def selected_agents(spec: str) -> list[str]:
    names = list(AGENT_MODULES) if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    unknown = sorted(set(names) - set(AGENT_MODULES))
    if unknown:
        raise SystemExit(f"CART_AGENTS names unknown agents {unknown}; known: {sorted(AGENT_MODULES)}")
    return names


for name in selected_agents(settings.agents):
    importlib.import_module(AGENT_MODULES[name])

__all__ = ["app"]
