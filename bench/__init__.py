"""bench: pick, tune and ship language models with numbers you can trust."""

__version__ = "0.1.0"
