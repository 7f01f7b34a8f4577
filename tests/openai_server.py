"""A scripted OpenAI-compatible server for tests: loopback only, bounded, counts every request.

A request is told apart by its key: the last user message (chat), or the prompt (completions;
a token-id prompt as a tuple of tuples). `script(key, attempt)` says what its attempt-th request
(0-based) gets; the default answers every request.

Actions: "ok"; "429" (Retry-After: 1); "500"; "timeout" (answers after `slow_s`, past the
client's timeout); "drop" (a connection closed mid-body); "empty" (no choices); "nonjson";
"nologprobs" (ok, but echo requests get no log-probabilities); "nousage" (ok, without `usage`).
Streamed requests also: "stream-empty" (events with `choices: []` only), "stream-html" (a 200
HTML page), "stream-cut" (a 200 JSON body cut short, no events).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Script = Callable[[object, int], str]


class ScriptedServer:
    def __init__(self, model: str = "scripted", script: Script | None = None,
                 answer: Callable[[object], str] | None = None,
                 logprobs: Callable[[list[list[int]]], list[tuple[list, list]]] | None = None,
                 delay_s: float = 0.0, slow_s: float = 3.0):
        self.model, self.script = model, script or (lambda key, attempt: "ok")
        self.answer = answer or (lambda key: "A")
        self.logprobs, self.delay_s, self.slow_s = logprobs, delay_s, slow_s
        self.requests: Counter = Counter()  # key -> requests received
        self.auth: set[str] = set()  # Authorization headers seen
        self.bodies: list[dict] = []  # every POST body, in arrival order
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [
                        {"id": server.model, "object": "model", "created": 0, "owned_by": "tests"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.auth.add(self.headers.get("authorization", ""))
                server.bodies.append(body)
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    server._handle(self, body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _json(self, status: int, payload, headers: dict | None = None):
                raw = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in {"content-type": "application/json", **(headers or {})}.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    # ---- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> ScriptedServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- requests -------------------------------------------------------------------------------
    @staticmethod
    def key_of(body: dict):
        if "messages" in body:
            return body["messages"][-1]["content"]
        prompt = body["prompt"]
        return tuple(tuple(p) for p in prompt) if isinstance(prompt, list) and prompt and \
            isinstance(prompt[0], list) else (tuple(prompt) if isinstance(prompt, list) else prompt)

    def _handle(self, h, body: dict) -> None:
        key = self.key_of(body)
        with self.lock:
            attempt = self.requests[key]
            self.requests[key] += 1
        action = self.script(key, attempt)
        if self.delay_s:
            time.sleep(self.delay_s)
        if action == "429":
            return h._json(429, {"error": {"message": "rate limited"}}, {"retry-after": "1"})
        if action == "500":
            return h._json(500, {"error": {"message": "internal error"}})
        if action == "timeout":
            time.sleep(self.slow_s)
        if action == "drop":
            h.send_response(200)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", "1000")
            h.end_headers()
            h.wfile.write(b'{"id": "x", "choi')
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return None
        if action == "nonjson":
            raw = b"<html>502 Bad Gateway</html>"
            h.send_response(200)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(raw)))
            h.end_headers()
            h.wfile.write(raw)
            return None
        if action in ("stream-html", "stream-cut") and body.get("stream"):
            raw = (b"<html><body>502 Bad Gateway</body></html>" if action == "stream-html"
                   else b'{"id": "x", "object": "chat.completion", "choi')
            h.send_response(200)
            h.send_header("content-type", "text/html" if action == "stream-html" else "application/json")
            h.send_header("content-length", str(len(raw)))
            h.end_headers()
            h.wfile.write(raw)
            return None
        chat = "messages" in body
        if action == "empty":
            return h._json(200, {"id": "x", "object": "chat.completion" if chat else
                                 "text_completion", "created": 0, "model": self.model, "choices": []})
        if body.get("echo"):
            return h._json(200, self._echo(body, action))
        text = self.answer(key)[: body.get("max_tokens", 16)]
        usage = {"prompt_tokens": 10, "completion_tokens": len(text), "total_tokens": 10 + len(text)}
        if action == "nousage":
            usage = None
        if body.get("stream"):
            return self._stream(h, "" if action == "stream-empty" else text, usage, chat,
                                none=action == "stream-empty")
        choice = ({"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                  if chat else {"index": 0, "finish_reason": "stop", "text": text})
        return h._json(200, {"id": "x", "object": "chat.completion" if chat else "text_completion",
                             "created": 0, "model": self.model, "choices": [choice],
                             **({"usage": usage} if usage else {})})

    def _echo(self, body: dict, action: str) -> dict:
        """`logprobs(prompts)` gives per prompt (token log-probabilities, first None; whether
        each token is the argmax); a token that is not gets a made-up better one in its top."""
        prompts = body["prompt"]
        scored = None if action == "nologprobs" or self.logprobs is None else self.logprobs(prompts)
        choices = []
        for i, ids in enumerate(prompts):
            logprobs = None
            if scored is not None:
                lps, greedy = scored[i]
                tops = [None] + [{str(t): lp} if g else {"better": lp + 1.0}
                                 for t, lp, g in zip(ids[1:], lps[1:], greedy[1:])]
                logprobs = {"tokens": [str(t) for t in ids], "token_logprobs": lps,
                            "top_logprobs": tops, "text_offset": list(range(len(ids)))}
            choices.append({"index": i, "finish_reason": "length", "text": "", "logprobs": logprobs})
        return {"id": "x", "object": "text_completion", "created": 0, "model": self.model,
                "choices": choices, "usage": {"prompt_tokens": sum(map(len, prompts)),
                                              "completion_tokens": 0, "total_tokens": 0}}

    def _stream(self, h, text: str, usage: dict | None, chat: bool, none: bool = False) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("connection", "close")
        h.end_headers()
        h.close_connection = True
        try:
            for ch in text:
                delta = {"index": 0, "delta": {"content": ch}} if chat else {"index": 0, "text": ch}
                chunk = {"id": "x", "object": "chat.completion.chunk" if chat else "text_completion",
                         "created": 0, "model": self.model, "choices": [delta]}
                h.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                h.wfile.flush()
            if not none:  # the finishing chunk real servers send
                end = ({"index": 0, "delta": {}, "finish_reason": "stop"} if chat else
                       {"index": 0, "text": "", "finish_reason": "stop"})
                h.wfile.write(f"data: {json.dumps({'id': 'x', 'object': 'chat.completion.chunk' if chat else 'text_completion', 'created': 0, 'model': self.model, 'choices': [end]})}\n\n".encode())
            last = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": self.model,
                    "choices": [], **({"usage": usage} if usage else {})}
            if usage or none:
                h.wfile.write(f"data: {json.dumps(last)}\n\n".encode())
            h.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client closed the stream: the answer was decided
