"""smshub core: the message model, intake, dispatcher and the ports adapters plug into."""

__version__ = "0.1.0"
