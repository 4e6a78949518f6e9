"""edgemm: offline, real-time multimodal recognition for the edge."""

from .config import Config, load_config
from .events import Event, EventBus
from .pipeline import Pipeline

__version__ = "0.1.0"
__all__ = ["Config", "Event", "EventBus", "Pipeline", "load_config", "__version__"]
