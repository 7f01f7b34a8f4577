"""`bench serve`: a model entry behind an OpenAI-compatible server (transformers serve, vLLM or
lmdeploy), and the models.yaml entry (backend: openai) that points at it."""

from bench.serve.engines import ENGINES, Launch, Prepared, command, executable
from bench.serve.server import Server, ServerFailed, serving

__all__ = ["ENGINES", "Launch", "Prepared", "Server", "ServerFailed", "command", "executable",
           "serving"]
