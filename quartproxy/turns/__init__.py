"""One chat turn, independent of the channel that asked for it: the runner (runner.py), the
readers' view of its events (live.py), and what every channel does with it (channels.py)."""

from .live import BufferedTurn as BufferedTurn
from .live import EventSource as EventSource
from .live import LiveTurn as LiveTurn
from .runner import HEARTBEAT_SLOTS as HEARTBEAT_SLOTS
from .runner import INTERNAL as INTERNAL
from .runner import SHUTTING_DOWN as SHUTTING_DOWN
from .runner import Busy as Busy
from .runner import TurnRequest as TurnRequest
from .runner import TurnRunner as TurnRunner
