"""The tests' screens on the push channel: local/push/screen.py (also used by `make chaos`)."""

from local.push.screen import WAIT_SECONDS, Screen

__all__ = ["WAIT_SECONDS", "Screen"]
