"""Faust agents, one module each. An agent is a short loop: read a message, call the pure core, persist, emit,
reply. Which agents a worker runs is configuration (`CART_AGENTS`), not code: see `app/streams/worker.py`."""
