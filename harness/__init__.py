"""iadbench: evaluate multimodal LLMs on industrial anomaly detection."""

__version__ = "0.1.0"
