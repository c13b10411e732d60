"""`faust -A app.worker worker` finds the Faust app here; the worker itself is `app.streams.worker`."""

from app.streams.worker import app

__all__ = ["app"]
