"""Where OpenCompass is installed, what one of its dataset configs declares (read with `ast`, never
imported: its classes live in the other venv), where its data paths lie in bench's data dir, and a
model dir that its transformers 4 can load."""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bench.config import ModelSpec
from bench.errors import BenchError
from bench.files import iter_jsonl

VENV_ENV = "BENCH_OC_VENV"
REPO = Path(__file__).resolve().parents[2]
# OpenCompass dataset ids that stand for local files (opencompass/utils/datasets_info.py)
_OC_IDS = {"opencompass/afqmc-dev": "./data/CLUE/AFQMC/dev.json",
           "opencompass/OCNLI-dev": "./data/CLUE/OCNLI/dev.json",
           "opencompass/cmnli-dev": "./data/CLUE/cmnli/cmnli_public/dev.json"}
_DATA_RE = re.compile(r"\./data/(FewCLUE|CLUE)/([^/]+)/(.+)$")

@dataclass(frozen=True)
class OCInstall:
    venv: Path
    python: Path
    package: Path  # site-packages/opencompass
    version: str


def oc_install() -> OCInstall:
    """The OpenCompass venv: $BENCH_OC_VENV, else .venv-oc beside bench's repo."""
    value = os.environ.get(VENV_ENV)
    venv = Path(value).expanduser() if value else REPO / ".venv-oc"
    if not venv.is_absolute() and not venv.exists():
        venv = REPO / venv
    python = venv / "bin" / "python"
    packages = sorted(venv.glob("lib/python3*/site-packages/opencompass"))
    if not python.exists() or not packages:
        raise BenchError(f"OpenCompass venv not found at {venv}; run `make oc-venv` (or point "
                         f"{VENV_ENV} at a venv installed from requirements/opencompass.lock)")
    dist = sorted(packages[0].parent.glob("opencompass-*.dist-info"))
    version = dist[0].name.removeprefix("opencompass-").removesuffix(".dist-info") if dist else "?"
    return OCInstall(venv, python, packages[0], version)


@dataclass(frozen=True)
class DatasetDecl:
    """One `dict(abbr=..., type=..., path=...)` of a dataset config."""

    abbr: str
    type: str
    files: dict[str, str]  # field (path / data_files) → value as written


@dataclass
class OCConfig:
    name: str
    path: Path
    module: str  # opencompass.configs.datasets.<folder>.<name>
    variables: list[str]  # the `*_datasets` lists it defines
    texts: dict[str, str]  # every file read (the config and what it imports) → text
    decls: list[DatasetDecl]

    @property
    def inferencer(self) -> str:
        return "ppl" if any("PPLInferencer" in t for t in self.texts.values()) else "gen"


def _imported_files(tree: ast.AST, path: Path, package: Path) -> list[Path]:
    files = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        rel = node.module.replace(".", "/") + ".py"
        if node.level:
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            files.append(base / rel)
        elif node.module.startswith("opencompass.configs."):
            files.append(package.parent / rel)
    return [f for f in files if f.is_file()]


def _decls(tree: ast.AST) -> list[DatasetDecl]:
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict"):
            continue
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        abbr = kw.get("abbr")
        if not (isinstance(abbr, ast.Constant) and isinstance(abbr.value, str)):
            continue
        kind = kw.get("type")
        kind_name = getattr(kind, "id", None) or getattr(kind, "attr", None) or ""
        files = {k: v.value for k, v in kw.items() if k in ("path", "data_files")
                 and isinstance(v, ast.Constant) and isinstance(v.value, str)}
        out.append(DatasetDecl(abbr.value, kind_name, files))
    return out


def load_config(name: str, install: OCInstall) -> OCConfig:
    """Find a dataset config by name and read what it declares (without importing it)."""
    root = install.package / "configs" / "datasets"
    index: dict[str, list[Path]] = {}
    for p in root.rglob("*.py"):
        if not p.name.startswith("__"):
            index.setdefault(p.stem, []).append(p)
            index.setdefault(f"{p.parent.name}/{p.stem}", []).append(p)
    if name.removesuffix(".py") not in index:
        import difflib

        close = difflib.get_close_matches(name, [k for k in index if "/" not in k], n=3)
        family = sorted(k for k in index if re.fullmatch(r"(Few)?CLUE_\w+_(gen|ppl)", k))
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise BenchError(f"unknown OpenCompass dataset config '{name}'{hint}; FewCLUE/CLUE configs: "
                         f"{', '.join(family)} (all under {root})")
    paths = index[name.removesuffix(".py")]
    if len(paths) > 1:
        raise BenchError(f"OpenCompass dataset config '{name}' is ambiguous; name one of: "
                         + ", ".join(f"{p.parent.name}/{p.stem}" for p in paths))
    path = paths[0]
    texts, decls, todo, seen = {}, [], [path], set()
    variables: list[str] = []
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        text = current.read_text(encoding="utf-8")
        tree = ast.parse(text)
        texts[current.relative_to(install.package).as_posix()] = text
        decls += _decls(tree)
        todo += _imported_files(tree, current, install.package)
        if current == path:
            for node in tree.body if isinstance(tree, ast.Module) else []:
                names = []
                if isinstance(node, ast.With):
                    names = [a.asname or a.name for n in node.body if isinstance(n, ast.ImportFrom)
                             for a in n.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [a.asname or a.name for a in node.names]
                elif isinstance(node, ast.Assign):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                variables += [n for n in names if n.endswith("_datasets") and n not in variables]
    if not variables:
        raise BenchError(f"OpenCompass config '{name}' ({path}) defines no `*_datasets` list")
    module = "opencompass." + path.relative_to(install.package).with_suffix("").as_posix().replace("/", ".")
    return OCConfig(name, path, module, variables, texts, decls)


def local_data_path(value: str, data_dir: Path) -> Path | None:
    """bench's file for a path OpenCompass reads (`./data/FewCLUE/bustm/x.json` →
    `<data_dir>/fewclue/bustm/x.json`); None for values that are not data paths (`json`)."""
    value = _OC_IDS.get(value, value)
    match = _DATA_RE.match(value)
    if not match:
        return None
    return data_dir / match[1].lower() / match[2].lower() / match[3]


def line_ids(decl: DatasetDecl, path: Path) -> list[str]:
    """bench's native ids (`L<line>`) of the records OpenCompass's loader keeps, in its order."""
    drop_dash = "CMNLI" in decl.type.upper()
    return [f"L{n}" for n, record in iter_jsonl(path)
            if not (drop_dash and record.get("label") == "-")]


def model_dir(spec: ModelSpec, chat_template: str | None, dest: Path) -> str:
    """The model path OpenCompass (transformers 4) should load. A dir saved by transformers 5 gets a
    shadow `dest` of symlinks with tokenizer_config.json / config.json translated back (tokenizer
    class, special tokens, rope parameters); `chat_template` (an override) is written there too."""
    src = Path(spec.path).expanduser()
    if not src.is_dir():
        if chat_template is not None:
            raise BenchError(f"model '{spec.name}': the OpenCompass engine applies a chat_template "
                             "override only to a local model dir")
        return spec.path
    tok_file, cfg_file = src / "tokenizer_config.json", src / "config.json"
    tok = json.loads(tok_file.read_text(encoding="utf-8")) if tok_file.is_file() else {}
    cfg = json.loads(cfg_file.read_text(encoding="utf-8")) if cfg_file.is_file() else {}
    v5 = (tok.get("tokenizer_class") == "TokenizersBackend"
          or isinstance(tok.get("extra_special_tokens"), list)
          or str(cfg.get("transformers_version", "")).startswith("5"))
    override = chat_template is not None
    if not (v5 or override):
        return str(src)
    dest.mkdir(parents=True)
    for item in src.iterdir():
        if item.name not in ("tokenizer_config.json", "config.json", "chat_template.jinja") or (
                item.name == "chat_template.jinja" and not override):
            (dest / item.name).symlink_to(item.resolve())
    if tok.get("tokenizer_class") == "TokenizersBackend":
        tok["tokenizer_class"] = "PreTrainedTokenizerFast"
        tok.setdefault("model_input_names", ["input_ids", "attention_mask"])
    if isinstance(tok.get("extra_special_tokens"), list):
        tok["additional_special_tokens"] = tok.pop("extra_special_tokens")
    tok.pop("backend", None)
    if override:
        tok["chat_template"] = chat_template
    rope = cfg.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" not in cfg:
        cfg["rope_theta"] = rope.get("rope_theta", 10000.0)
        if rope.get("rope_type", "default") != "default":
            cfg["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    (dest / "tokenizer_config.json").write_text(json.dumps(tok, ensure_ascii=False, indent=2))
    if cfg:
        (dest / "config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2))
    return str(dest)
