"""transformers backend: OpenCompass-exact ppl scores with shared prefixes, early-stopping greedy.

Scoring reproduces HuggingFaceBaseModel.get_ppl (opencompass/models/huggingface_above_v4_33.py):
cross-entropy summed over the predicted tokens whose label is not the pad id, divided by the number
of non-pad tokens of the whole sequence (first token included, though it is never predicted).
Inputs longer than the model's max_seq_len (max_position_embeddings) are cut from the left, as
OpenCompass's tokenizer call does.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
from pathlib import Path

import torch
import transformers

from bench import threads
from bench.backends.base import dir_fingerprint, new_stats
from bench.backends.encoding import OCEncoding, max_seq_len_of
from bench.backends.greedy import GreedyDecoding
from bench.backends.scoring import TrieScoring
from bench.config import ModelSpec
from bench.errors import BenchError
from bench.files import read_text
from bench.logs import import_bitsandbytes

BACKEND_VERSION = "hf/2"  # 2: inputs cut to max_seq_len from the left, as OpenCompass
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"device '{name}' requested but CUDA is not available; use device: cpu")
    return torch.device(name)


def _dtype(name: str, device: torch.device, config) -> torch.dtype:
    if name != "auto":
        return _DTYPES[name]
    if device.type == "cpu":
        return torch.float32
    cfg = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    cfg = _DTYPES.get(cfg, cfg) if isinstance(cfg, str) else cfg
    return cfg if cfg in (torch.bfloat16, torch.float16) else torch.bfloat16


def _read_template(value: str) -> str:
    path = Path(value).expanduser()
    return read_text(path, "chat_template file") if len(value) < 4096 and path.is_file() else value


def _generation_config(src: str, config, kw: dict):
    """What model.generation_config will be, without loading the weights."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(src, **kw)
    except OSError:
        return GenerationConfig.from_model_config(config)


def _hub_commit(repo: str, revision: str | None) -> str | None:
    """The commit a Hub id resolved to, read from the local cache the load just filled."""
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(repo, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - an unusual cache layout only loses the commit pin
        return None
    return Path(path).parent.name if isinstance(path, str) else None


class HFBackend(OCEncoding, GreedyDecoding, TrieScoring):
    """A local dir or Hub id loaded with transformers (optionally a LoRA adapter, unmerged)."""

    name = "hf"

    def __init__(self, spec: ModelSpec):
        from transformers import AutoConfig, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # bench draws its own progress

        self.spec = spec
        local = Path(spec.path).expanduser()
        self.is_local = local.is_dir()
        src = str(local) if self.is_local else spec.path
        kw = {"trust_remote_code": spec.trust_remote_code}
        if not self.is_local and spec.revision:
            kw["revision"] = spec.revision
        self.where = where = f"model '{spec.name}' ({spec.path})"
        self._src, self._kw = src, kw
        try:
            config = AutoConfig.from_pretrained(src, **kw)
            self.tokenizer = AutoTokenizer.from_pretrained(src, **kw)
        except (OSError, ValueError) as exc:
            raise BenchError(f"{where}: cannot load: {exc}\n  next step: {self._hint()}") from None
        self.config = config
        self.gen_config = _generation_config(src, config, kw)
        self.device = _device(spec.device)
        self.threads = threads.apply() if self.device.type == "cpu" else None
        self.dtype = _dtype(spec.dtype, self.device, config)
        # measured on CPU (benchmarks/): ppl batches past ~1024 tokens lose to the KV copies of
        # shared prefixes; greedy decoding has no such copies and gains up to 4096
        gpu = self.device.type == "cuda"
        self.batch_tokens = spec.batch_tokens or (16384 if gpu else 1024)
        self.gen_batch_tokens = spec.batch_tokens or (16384 if gpu else 4096)
        self._model = None  # weights load on first use: a fully cached run never loads them
        self.commit = None if self.is_local else _hub_commit(spec.path, spec.revision)
        if spec.chat_template:
            self.tokenizer.chat_template = _read_template(spec.chat_template)
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if spec.template == "chat" and not has_template:
            raise BenchError(f"{where}: template: chat, but the tokenizer has no chat template; "
                             "set chat_template or use template: base")
        auto = "chat" if has_template else "base"
        self.mode = spec.template if spec.template != "auto" else auto
        self.pad_id = self._pad_id()
        gen_eos = self.gen_config.eos_token_id
        gen_eos = [gen_eos] if isinstance(gen_eos, int) else list(gen_eos or [])
        tok_eos = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        self.eos_ids = set(gen_eos + tok_eos) if self.mode == "chat" else set(gen_eos or tok_eos)
        # OpenCompass chat stop words: decoded generation eos ids plus the tokenizer's eos token
        words = {self.tokenizer.decode([i]) for i in gen_eos} | {self.tokenizer.eos_token or ""}
        self.stop_words = sorted(w for w in words if w) if self.mode == "chat" else []
        # OpenCompass's max_seq_len (_get_possible_max_seq_len): inputs longer than this are cut
        # from the left (its tokenizers load with truncation_side='left', called truncation=True)
        self.max_seq_len = max_seq_len_of(config)
        self.share_prefix = self._can_share_prefix(config)
        # greedy HF generate (what OpenCompass calls) still applies the model's repetition penalty
        penalty = getattr(self.gen_config, "repetition_penalty", None)
        self.repetition_penalty = float(penalty) if penalty not in (None, 1.0) else None
        self.stats = new_stats()
        self._fingerprint: str | None = None

    def _hint(self) -> str:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0")
        if self.is_local:
            return "check that the dir holds a transformers model"
        if offline:
            return ("not a local dir, and as a Hub id it is not in the local cache while "
                    "HF_HUB_OFFLINE is set")
        return "not a local dir; as a Hub id check the name, revision and network access"

    @property
    def model(self):
        """The weights (and adapter), loaded on first use."""
        if self._model is None:
            from transformers import AutoModelForCausalLM

            extra = {"device_map": str(self.device)} if self.device.type == "cuda" else {}
            if self.spec.quantization != "none":
                from bench.train.quantize import bnb_config

                extra["quantization_config"] = bnb_config(self.spec.quantization, self.dtype)
            try:
                model = AutoModelForCausalLM.from_pretrained(
                    self._src, dtype=self.dtype, **self._kw, **extra)
            except (OSError, ValueError) as exc:
                raise BenchError(f"{self.where}: cannot load: {exc}\n  next step: {self._hint()}"
                                 ) from None
            if self.device.type != "cuda" and self.spec.quantization == "none":
                model = model.to(self.device)
            if self.spec.adapter:
                import_bitsandbytes()  # peft imports it (quietly: bench/logs.py)
                try:
                    from peft import PeftModel
                except ModuleNotFoundError:
                    raise BenchError(f"{self.where}: adapter needs peft; pip install 'bench[hf]'"
                                     ) from None
                model = PeftModel.from_pretrained(model, self.spec.adapter, is_trainable=False)
            self._model = model.eval()
        return self._model

    # ---- identity -------------------------------------------------------------------------------
    def _pad_id(self) -> int:
        """OpenCompass _load_tokenizer: tokenizer pad, else generation_config pad, else eos."""
        tok = self.tokenizer
        for cand in (tok.pad_token_id, self.gen_config.pad_token_id, tok.eos_token_id):
            if cand is not None:
                return int(cand[0] if isinstance(cand, list) else cand)
        raise BenchError(f"model '{self.spec.name}': tokenizer has neither pad nor eos token")

    @property
    def fingerprint(self) -> str:
        """sha256 over weights/tokenizer/template files (or Hub id@commit), mode and adapter."""
        if self._fingerprint is None:
            spec = self.spec
            parts = {
                "model": (dir_fingerprint(spec.path) if self.is_local
                          else f"hub:{spec.path}@{self.commit or spec.revision or 'unresolved'}"),
                "template": self.mode,
                "chat_template": self.tokenizer.chat_template if self.mode == "chat" else None,
            }
            if spec.adapter:
                adapter = Path(spec.adapter).expanduser()
                parts["adapter"] = (dir_fingerprint(adapter) if adapter.is_dir()
                                    else f"hub:{spec.adapter}")
            if spec.system:  # only when set: existing fingerprints stay as they were
                parts["system"] = spec.system
            if spec.quantization != "none":
                parts["quantization"] = spec.quantization
            raw = json.dumps(parts, sort_keys=True, ensure_ascii=False)
            self._fingerprint = hashlib.sha256(raw.encode()).hexdigest()
        return self._fingerprint

    def _params(self) -> tuple[int | None, int]:
        """(base params, adapter params): counted on the loaded model, else read from the
        safetensors headers so that a fully cached run still reports size without loading."""
        if self._model is None:
            files = sorted(Path(self._src).glob("*.safetensors")) if self.is_local else []
            if not files or self.spec.adapter:
                return None, 0
            from safetensors import safe_open

            total = 0
            for f in files:
                with safe_open(f, "pt") as fh:
                    total += sum(math.prod(fh.get_slice(k).get_shape()) for k in fh.keys())
            return total, 0
        base = self._model.get_base_model() if self.spec.adapter else self._model
        named = list(base.named_parameters())
        return (sum(p.numel() for n, p in named if "lora_" not in n),
                sum(p.numel() for n, p in named if "lora_" in n))

    @property
    def info(self) -> dict:
        params, adapter_params = self._params()
        return {
            "backend": self.name,
            "backend_version": f"{BACKEND_VERSION} transformers/{transformers.__version__} "
                               f"torch/{torch.__version__}",
            "params": params,
            "adapter_params": adapter_params,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "template": self.mode,
            "adapter": self.spec.adapter,
            "share_prefix": self.share_prefix,
            "repetition_penalty": self.repetition_penalty,
            "threads": self.threads,
        }

    def _can_share_prefix(self, config) -> bool:
        """Prefix sharing needs plain full-attention KV layers (no sliding window, recurrence)."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache(config=config)
        return all(type(layer) is DynamicLayer for layer in cache.layers)

    # ---- scoring --------------------------------------------------------------------------------
    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, real: int, cache=None, **kw):
        """One forward pass, counted. `cache` (a KV cache to extend) goes in under the name this
        transformers version uses (`cache` since 5.x, `past_key_values` before)."""
        self.stats["forward_calls"] += 1
        self.stats["tokens_pushed"] += real
        self.stats["tokens_padded"] += ids.numel()
        if cache is not None:
            kw[self._cache_kw] = cache
        return self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kw)

    @functools.cached_property
    def _cache_kw(self) -> str:
        base = getattr(self.model, "get_base_model", lambda: self.model)()
        return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"

    @staticmethod
    def cache_of(out):
        """The KV cache a forward pass returned, under either name."""
        return out["cache"] if "cache" in out else out["past_key_values"]
