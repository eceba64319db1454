"""The n8n side: the client (JWT per call, timeouts, error mapping) and its transport."""

from .answers import CUT, REJECTED, TIMEOUT, UNAVAILABLE, Emit
from .client import N8nClient
from .transport import PooledTransport

__all__ = ["CUT", "REJECTED", "TIMEOUT", "UNAVAILABLE", "Emit", "N8nClient", "PooledTransport"]
