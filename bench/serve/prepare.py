"""The model folder an engine serves: the entry's own folder or Hub id, else a temporary folder
holding the LoRA adapter merged into its base, or a tokenizer that carries the entry's
chat_template override beside links to the original weights."""

from __future__ import annotations

import json
from pathlib import Path

from bench.config import ModelSpec
from bench.serve.engines import Prepared, needs_folder


def local_source(spec: ModelSpec) -> tuple[str, bool]:
    """(the model's local folder, True) or, for a Hub id, (its id, False)."""
    local = Path(spec.path).expanduser()
    return (str(local.resolve()), True) if local.is_dir() else (spec.path, False)


def prepare(engine: str, spec: ModelSpec, tokenizer, tmp: Path | None) -> Prepared:
    """The model as `engine` gets it; `tokenizer` is the entry's (template override applied);
    `tmp` is an empty folder, needed when `needs_folder(engine, spec)` or vLLM gets an inline
    chat template."""
    src, local = local_source(spec)
    if engine == "vllm":
        return Prepared(src, hub=not local, chat_template_file=_template_file(spec, tmp),
                        lora_rank=_lora_rank(spec.adapter))
    if not needs_folder(engine, spec):
        return Prepared(src, hub=not local)
    assert tmp is not None
    base = src if local else _snapshot(spec)
    out = tmp / "model"
    if spec.adapter:
        from bench.train.trainer import merge

        merge(base, _adapter(spec.adapter), out, tokenizer)
    else:
        _link_with_tokenizer(Path(base), tokenizer, out)
    return Prepared(str(out))


def _snapshot(spec: ModelSpec) -> str:
    """A Hub model's local copy at the entry's revision (downloaded unless HF_HUB_OFFLINE)."""
    from huggingface_hub import snapshot_download

    return snapshot_download(spec.path, revision=spec.revision)


def _adapter(adapter: str) -> str:
    local = Path(adapter).expanduser()
    return str(local.resolve()) if local.is_dir() else adapter


def _link_with_tokenizer(src: Path, tokenizer, out: Path) -> None:
    """`out`: the tokenizer saved (with its template), and links to every other file of `src`
    (the weights are not copied; the original template files are left out)."""
    tokenizer.save_pretrained(out)
    written = {p.name for p in out.iterdir()}
    for item in src.iterdir():
        if item.name not in written and not item.name.startswith("chat_template"):
            (out / item.name).symlink_to(item.resolve())


def _template_file(spec: ModelSpec, tmp: Path | None) -> str | None:
    """vLLM's --chat-template: the entry's template file, or its inline template written out."""
    if not spec.chat_template:
        return None
    from bench.backends.hf import _read_template

    path = Path(spec.chat_template).expanduser()
    if len(spec.chat_template) < 4096 and path.is_file():
        return str(path.resolve())
    assert tmp is not None
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / "chat_template.jinja"
    out.write_text(_read_template(spec.chat_template), encoding="utf-8")
    return str(out)


def _lora_rank(adapter: str | None) -> int | None:
    """The adapter's LoRA rank (adapter_config.json 'r'), when it is a local folder."""
    config = Path(adapter).expanduser() / "adapter_config.json" if adapter else None
    if config is None or not config.is_file():
        return None
    rank = json.loads(config.read_text(encoding="utf-8")).get("r")
    return rank if isinstance(rank, int) else None
