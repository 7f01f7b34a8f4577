"""A model behind an OpenAI-compatible API (DeepSeek, vLLM, lmdeploy's api_server, `transformers
serve`), scored like a local one.

* gen: OpenCompass's chat messages to /v1/chat/completions (or the rendered prompt to
  /v1/completions), greedy (temperature 0), max_tokens from `generation`. With early stop the
  answer is streamed and the stream closed once the post-processed answer is decided.
* ppl and log-likelihoods: the prompt's token ids (from `tokenizer`, exactly as the local backend
  builds them) to /v1/completions with echo + logprobs (or vLLM's prompt_logprobs); the values
  then go through the local backend's own arithmetic (TrieScoring). Without those, one refusal.
* identity: a server `bench serve` started names the weights it serves (weights_fingerprint), so
  the cache follows the weights; any other is known by URL, model id and what /v1/models says,
  and is marked as not content-addressed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from bench.backends.api_client import BadResponse, Requester
from bench.backends.base import dir_fingerprint, new_stats, oc_chat_messages
from bench.backends.encoding import OCEncoding, max_seq_len_of
from bench.backends.scoring import TrieScoring
from bench.chat import render, with_system
from bench.config import APIModelSpec, looks_local
from bench.errors import BenchError
from bench.tasks.base import Prompt

BACKEND_VERSION = "openai/1"
_MODEL_FIELDS = ("root", "parent", "revision", "owned_by")  # stable across restarts


class _Streamed:
    def __init__(self, text: str, usage, usable: str | None):
        self.text, self.usage = text, usage
        self.problem = usable  # why the stream is no answer (None: it is one)


def _content_type(stream) -> str:
    response = getattr(stream, "response", None)
    return (response.headers.get("content-type") if response is not None else None) or "none"


class OpenAIBackend(OCEncoding, TrieScoring):
    name = "openai"

    def __init__(self, spec: APIModelSpec):
        self.spec = spec
        self.where = f"model '{spec.name}' ({spec.base_url})"
        self.requester = Requester(spec)
        self.parallel = spec.concurrency  # the runner asks this many samples at once
        self.tokenizer, self.max_seq_len = self._load_tokenizer() if spec.tokenizer else (None, None)
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if spec.endpoint == "chat":
            self.mode = "chat"
        elif spec.template == "chat" and not has_template:
            raise BenchError(f"{self.where}: template: chat on /v1/completions needs a `tokenizer` "
                             "with a chat template")
        else:
            self.mode = spec.template if spec.template != "auto" else (
                "chat" if has_template else "base")
        if self.mode == "chat" and spec.endpoint == "completions" and self.tokenizer is None:
            raise BenchError(f"{self.where}: endpoint: completions renders chat prompts with "
                             "`tokenizer`; set it, or template: base")
        self.pad_id = self._pad_id()
        self.share_prefix = False
        self._fingerprint: str | None = None
        self._server: dict | None = None
        self._naive = 0  # tokens scored (echo requests)

    # ---- identity -------------------------------------------------------------------------------
    def _load_tokenizer(self):
        from transformers import AutoConfig, AutoTokenizer

        src = self.spec.tokenizer
        kw = {"trust_remote_code": self.spec.trust_remote_code}
        try:
            tok = AutoTokenizer.from_pretrained(src, **kw)
        except (OSError, ValueError) as exc:
            raise BenchError(f"{self.where}: cannot load tokenizer '{src}': {exc}") from None
        try:
            config = AutoConfig.from_pretrained(src, **kw)
        except (OSError, ValueError):
            config = None  # a tokenizer-only folder: no max_seq_len to cut prompts to
        return tok, max_seq_len_of(config) if config is not None else None

    def _pad_id(self) -> int | None:
        tok = self.tokenizer
        if tok is None:
            return None
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def server_model(self) -> dict:
        """The served model's /v1/models entry (its stable fields); the model must be listed."""
        if self._server is None:
            page = self.requester.call("GET /models", self.requester.client.models.list,
                                       lambda r: None)
            models = {m.id: m for m in page.data}
            if self.spec.model not in models:
                raise BenchError(f"{self.where}: the server does not serve '{self.spec.model}'; it "
                                 f"serves: {', '.join(sorted(models)) or '(nothing)'}")
            entry = models[self.spec.model].model_dump()
            self._server = {k: entry[k] for k in _MODEL_FIELDS if entry.get(k) is not None}
        return self._server

    @property
    def content_addressed(self) -> bool:
        return self.spec.weights_fingerprint is not None

    @property
    def fingerprint(self) -> str:
        """The served weights' fingerprint (bench serve) or URL + model id + server's model
        entry, with every request setting that changes an answer."""
        if self._fingerprint is None:
            spec = self.spec
            identity = ({"weights": spec.weights_fingerprint} if self.content_addressed else
                        {"base_url": spec.base_url.rstrip("/"), "model": spec.model,
                         "server": self.server_model()})
            tok = spec.tokenizer
            settings = {"endpoint": spec.endpoint, "template": self.mode, "stop": spec.stop,
                        "seed": spec.seed, "extra_body": spec.extra_body, "system": spec.system,
                        "tokenizer": (dir_fingerprint(tok) if tok and looks_local(tok) else tok)}
            raw = json.dumps({"api": identity, **settings}, sort_keys=True, ensure_ascii=False)
            self._fingerprint = hashlib.sha256(raw.encode()).hexdigest()
        return self._fingerprint

    @property
    def stats(self) -> dict:
        """The local backend's counters, in requests: every HTTP attempt is a model call."""
        s = self.requester.stats
        return new_stats() | {
            "forward_calls": s["requests"] + s["errors"], "tokens_naive": self._naive,
            "tokens_pushed": s["prompt_tokens"] + s["completion_tokens"],
            "sequences": s["requests"], **s}

    @property
    def info(self) -> dict:
        import openai

        return {"backend": self.name, "backend_version": BACKEND_VERSION,
                "client": f"openai-python/{openai.__version__}", "base_url": self.spec.base_url,
                "model": self.spec.model, "endpoint": self.spec.endpoint, "template": self.mode,
                "content_addressed": self.content_addressed, "concurrency": self.spec.concurrency,
                "params": None, "adapter_params": 0}

    # ---- text -----------------------------------------------------------------------------------
    def render(self, prompt: Prompt | str, mode: str) -> str:
        """What the server is fed: the rendered prompt, or for /v1/chat/completions without a
        tokenizer the messages themselves (the server applies its own template)."""
        if self.spec.endpoint == "chat" and not getattr(self.tokenizer, "chat_template", None):
            return json.dumps(oc_chat_messages(prompt, mode), ensure_ascii=False)
        return super().render(prompt, mode)

    def render_chat(self, messages: list[dict]) -> str:
        """As the local backend renders it; on /v1/chat/completions without a tokenizer with a
        chat template, the messages sent."""
        if self.spec.endpoint == "chat" and not getattr(self.tokenizer, "chat_template", None):
            return json.dumps(list(with_system(messages, self.spec.system)), ensure_ascii=False)
        if self.tokenizer is None:
            return render(None, with_system(messages, self.spec.system), "base")
        return super().render_chat(messages)

    # ---- generation -----------------------------------------------------------------------------
    def _request(self, max_new_tokens: int) -> dict:
        spec = self.spec
        kw = {"model": spec.model, "max_tokens": max_new_tokens, "temperature": 0.0}
        if spec.stop:
            kw["stop"] = spec.stop
        if spec.seed is not None:
            kw["seed"] = spec.seed
        if spec.extra_body:
            kw["extra_body"] = spec.extra_body
        return kw

    def generate(self, prompts: list[Prompt], max_new_tokens: int,
                 stop: Callable[[str], bool] | None = None) -> list[str]:
        """Greedy answers, one request each (the runner sends `parallel` at once)."""
        chat = self.spec.endpoint == "chat"
        return [self._complete(
            {"messages": oc_chat_messages(p, "gen")} if chat else
            {"prompt": (self._encode([p], "gen")[0] if self.tokenizer is not None
                        else self.render(p, "gen"))}, max_new_tokens, stop) for p in prompts]

    def generate_chat(self, conversations: list[list[dict]], max_new_tokens: int,
                      stop: Callable[[str], bool] | None = None,
                      temperature: float = 0.0) -> list[str]:
        """Answers to conversations (the model's system prompt added where they have none):
        the messages themselves, or on /v1/completions their rendering."""
        out = []
        for conversation in conversations:
            if self.spec.endpoint == "chat":
                body = {"messages": list(with_system(conversation, self.spec.system))}
            elif self.tokenizer is not None:
                text = self.render_chat(conversation)
                body = {"prompt": self._tokenize([text], special=self.mode == "base")[0]}
            else:
                body = {"prompt": render(None, with_system(conversation, self.spec.system), "base")}
            out.append(self._complete(body, max_new_tokens, stop, temperature))
        return out

    def chat(self, messages: list[dict], max_tokens: int) -> str:
        """One greedy /v1/chat/completions request (a judge's), whatever the entry's endpoint;
        reasoning a server returns in its own field is not part of the text."""
        return self._complete({"messages": messages}, max_tokens, None)

    def _complete(self, body: dict, max_new_tokens: int, stop: Callable[[str], bool] | None,
                  temperature: float = 0.0) -> str:
        """One generation request; with `stop`, streamed and closed once stop(text) holds."""
        client, kw = self.requester.client, self._request(max_new_tokens) | body
        kw["temperature"] = temperature
        if "messages" in body:
            create, text_of = client.chat.completions.create, lambda c: c.message.content
            delta_of = lambda c: c.delta.content  # noqa: E731
        else:
            create, text_of = client.completions.create, lambda c: c.text
            delta_of = text_of

        def send():
            if stop is None:
                return create(**kw)
            text, usage, choices = "", None, 0
            stream = create(**kw, stream=True, stream_options={"include_usage": True})
            for chunk in stream:
                usage = getattr(chunk, "usage", None) or usage
                if chunk.choices:
                    choices += 1
                    if piece := delta_of(chunk.choices[0]):
                        text += piece
                        if stop(text):  # the answer is decided: stop paying for tokens
                            stream.close()
                            break
            # closed early, the server sent no usage: its tokens stay unknown
            problem = None if choices else (  # an HTML page, a cut body, `choices: []`
                "the stream carried no choices (content-type "
                f"{_content_type(stream)}): no answer in it")
            return _Streamed(text, usage, problem)

        def check(response) -> None:
            if isinstance(response, _Streamed):
                if response.problem:
                    raise BadResponse(response.problem)
                return
            if not getattr(response, "choices", None):
                raise BadResponse("the response has no choices")

        response = self.requester.call("generation", send, check)
        if isinstance(response, _Streamed):
            return response.text
        return text_of(response.choices[0]) or ""

    # ---- log-probabilities (TrieScoring's arithmetic on the server's values) --------------------
    def score_candidates(self, items):
        self._need_logprobs()
        return super().score_candidates(items)

    def loglikelihood(self, requests):
        self._need_logprobs()
        return super().loglikelihood(requests)

    def _need_logprobs(self) -> None:
        if problem := self.spec.logprob_problem():
            raise BenchError(problem)

    def _token_scores(self, seqs: list[list[list[int]]]) -> list[list[tuple[list, list]]]:
        """Per item, per token sequence: (nll, greedy) per token, index 0 (0.0, False), from one
        echo request per item."""
        out = []
        for cands in seqs:
            kw = self._request(1) | {"prompt": cands, "echo": True, "logprobs": 1}
            self._naive += sum(len(c) for c in cands)

            def check(response, n=len(cands)) -> None:
                if len(getattr(response, "choices", None) or []) != n:
                    raise BadResponse(f"expected {n} choices")

            response = self.requester.call("log-probabilities", lambda: self.requester.client
                                            .completions.create(**kw), check)
            choices = sorted(response.choices, key=lambda c: c.index)
            out.append([self._values(c, seq) for c, seq in zip(choices, cands)])
        return out

    def _values(self, choice, seq: list[int]) -> tuple[list, list]:
        n = len(seq)
        nll, greedy = [0.0] * n, [False] * n
        logprobs = getattr(choice, "logprobs", None)
        token_lps = getattr(logprobs, "token_logprobs", None) if logprobs else None
        prompt_lps = (choice.model_extra or {}).get("prompt_logprobs")
        if token_lps and len(token_lps) >= n and all(v is not None for v in token_lps[1:n]):
            tops = getattr(logprobs, "top_logprobs", None) or [None] * n
            for t in range(1, n):
                nll[t] = -token_lps[t]
                top = tops[t] if t < len(tops) else None
                greedy[t] = bool(top) and token_lps[t] >= max(top.values())
            return nll, greedy
        if prompt_lps and len(prompt_lps) >= n:  # vLLM: {token id: {logprob, rank}} per position
            for t in range(1, n):
                entry = prompt_lps[t][str(seq[t])]
                nll[t], greedy[t] = -entry["logprob"], entry.get("rank") == 1
            return nll, greedy
        raise BenchError(
            f"{self.where}: the server returned no prompt log-probabilities for echo + logprobs "
            "on /v1/completions (transformers serve does not; vLLM does), so ppl mode and "
            "log-likelihoods cannot run on it; run the task in mode: gen")

    @property
    def latencies(self) -> list[float]:
        """Seconds per successful request, in order of completion."""
        return self.requester.latencies

    def abort(self) -> None:
        self.requester.abort()

    def meter(self):
        return self.requester.meter()
