"""edgemm: offline, real-time multimodal recognition for the edge."""

__version__ = "0.1.0"
