"""bench: pick, tune and ship language models with numbers you can trust."""

__version__ = "0.2.0"
