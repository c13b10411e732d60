"""The Faust worker entry point: `faust -A app.worker worker`.

`CART_AGENTS` chooses which agents this process runs (comma-separated names, or `all`), so the command side and
each read-model hydrator can be deployed and scaled apart without a fork of the code.
"""

from __future__ import annotations

import importlib

from app.streams.agent_names import AGENT_MODULES, selected_agents
from app.streams.faust_app import app, settings

for name in selected_agents(settings.agents):
    importlib.import_module(AGENT_MODULES[name])

__all__ = ["app"]
