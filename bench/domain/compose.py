"""One parent's question drawn from the templates, and good and poor answers composed for it.

All choices go through the caller's `random.Random`, over lists in their written order, so a seed
gives the same text on every machine. Sizes, growth and durations follow simple stated rules
(`size_for`, `months_lasting`) so every recommendation has the same, checkable reason.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from string import Formatter

from bench.domain import answers as A
from bench.domain import poor as P
from bench.domain import templates as T

SIZES = (59, 66, 73, 80, 90, 100, 110, 120, 130, 140, 150, 160)  # label = child's height in cm
TYPICAL_WEIGHT = ((60, 12), (70, 16), (80, 21), (90, 26), (100, 31), (110, 37), (120, 44), (130, 53),
                  (140, 63), (150, 76))  # height cm → typical weight 斤
GOOD_FLAGS = ("concrete", "reason", "standard", "safety_note", "clarify", "next_step", "warm")
BAD_FLAGS = ("generic", "dismissive", "deflect", "pushy", "exaggerated", "medical", "wrong_size")
SUMMARY = (("age", "孩子{age}"), ("height", "身高{height}"), ("weight", "体重{weight}"),
           ("weight2", "另一个{weight2}"), ("peer", "{peer}"), ("brand", "{brand}{cur}码{fit}"),
           ("temp", "外面{temp}"), ("dest", "要去{dest}"), ("character", "喜欢{character}"),
           ("colour", "偏爱{colour}"))


def fields(template: str) -> list[str]:
    """The {slot} names of a template, in order, each once."""
    names: list[str] = []
    for _, name, _, _ in Formatter().parse(template):
        if name and name not in names:
            names.append(name)
    return names


def _registry() -> dict[str, str]:
    """Template id → template text, for every template of both halves."""
    reg: dict[str, str] = {}
    for cat, halves in T.QUESTIONS.items():
        for half, entries in halves.items():
            for i, entry in enumerate(entries):
                reg[f"q.{cat}.{half}.{i}"] = entry[1]
    for name, pool in (("open", A.OPENINGS), ("confirm", A.CONFIRMS), ("close", A.CLOSINGS)):
        for half, texts in pool.items():
            reg.update({f"{name}.{half}.{i}": t for i, t in enumerate(texts)})
    for cat, subs in A.CORES.items():
        for sub, halves in subs.items():
            for half, texts in halves.items():
                reg.update({f"core.{cat}.{sub}.{half}.{i}": t for i, t in enumerate(texts)})
    for kind, halves in A.SAFETY.items():
        for half, texts in halves.items():
            reg.update({f"safety.{kind}.{half}.{i}": t for i, t in enumerate(texts)})
    for cat, halves in A.NEXT_STEPS.items():
        for half, texts in halves.items():
            reg.update({f"next.{cat}.{half}.{i}": t for i, t in enumerate(texts)})
    for name, keys in A.NOTES.items():
        for key, halves in keys.items():
            reg.update({f"note.{name}.{key}.{half}": t for half, t in halves.items()})
    for form, pool in (("short", P.POOR_SHORT), ("long", P.POOR_LONG)):
        for half, entries in pool.items():
            reg.update({f"poor.{form}.{half}.{i}": e[0] for i, e in enumerate(entries)})
    return reg


TEMPLATES = _registry()


def half_of(template_id: str) -> str:
    return "heldout" if ".heldout" in template_id else "train"


@dataclass
class Question:
    category: str
    sub: str
    half: str
    template_id: str
    text: str
    slots: dict[str, str]  # slot → its rendering, for the slots the question shows
    ctx: dict[str, str]  # everything an answer template may use
    notes: dict[str, str]  # derived-note field → template id
    has_size: bool


@dataclass
class Answer:
    text: str
    template_ids: list[str]
    flags: tuple[str, ...]


# ---- the rules behind a recommendation ------------------------------------------------------

def growth_per_year(months: int) -> int:
    return 20 if months < 12 else 10 if months < 36 else 7 if months < 72 else 6


def typical_weight(height: int) -> float:
    pts = TYPICAL_WEIGHT
    for (h0, w0), (h1, w1) in zip(pts, pts[1:]):
        if height <= h1:
            return w0 + (w1 - w0) * (max(height, h0) - h0) / (h1 - h0)
    return float(pts[-1][1])


def size_for(height: int, outer: bool, heavy: bool = False) -> int:
    """Smallest label ≥ height + 3 cm of room (8 cm for a coat worn over layers); one up if heavy."""
    i = next(i for i, s in enumerate(SIZES) if s >= height + (8 if outer else 3))
    return SIZES[min(i + heavy, len(SIZES) - 1)]


def months_lasting(size: int, height: int, outer: bool, growth: int) -> float:
    """Months until the child outgrows `size` (a label fits up to 5 cm over it, a coat up to it)."""
    return (size + (0 if outer else 5) - height) * 12 / growth


def duration_words(months: float) -> str:
    return ("三四个月" if months < 5 else "半年左右" if months < 8 else "大半年" if months < 11
            else "一年左右" if months < 15 else "一年多")


def next_size(size: int, steps: int = 1) -> int:
    return SIZES[min(SIZES.index(size) + steps, len(SIZES) - 1)]


def _temp(t: int) -> str:
    return f"零下{-t}度" if t < 0 else f"{t}度"


# ---- drawing a question ---------------------------------------------------------------------

def draw_question(rng: random.Random, category: str, half: str) -> Question:
    entries = T.QUESTIONS[category][half]
    qi = rng.randrange(len(entries))
    sub, text = entries[qi][0], entries[qi][1]
    need = entries[qi][2] if len(entries[qi]) > 2 else None
    (lo, hi), kinds, tags = T.SUB_RULES[category][sub]
    names = fields(text)
    if sub == "twins":
        age, months, height, weight, weight2 = rng.choice(T.TWINS[half])
    else:
        age, months, height, weight = rng.choice([p for p in T.PROFILES[half] if lo <= p[1] <= hi])
        weight2 = None
    ctx: dict[str, str] = {"age": age, "height": f"{height}厘米", "weight": f"{weight}斤",
                           "weight2": f"{weight2}斤"}
    band = None
    if "temp" in names:
        t, band = rng.choice(T.TEMPS[half])
        ctx["temp"] = _temp(t)
    garment = None
    if "garment" in names:
        wanted = set(tags) | ({need} - {None, "inner"})
        garment = rng.choice([g for g in T.GARMENTS[half] if g[1] in kinds and wanted <= set(g[2])
                              and not (need == "inner" and g[1] == "outer") and months <= g[4]
                              and (band is None or T.BAND_SEASON[band] in g[3])])
    ctx["garment"] = garment[0] if garment else "衣服"
    if "season" in names:
        ctx["season"] = rng.choice([s for s in T.SEASONS[half] if garment is None or s[0] in garment[3]])[1]
    for name, pool in (("brand", T.BRANDS), ("character", T.CHARACTERS), ("colour", T.COLOURS)):
        if name in names:
            ctx[name] = rng.choice(pool[half])
    fit_key = peer_key = climate = None
    if "fit" in names:
        fit_key, ctx["fit"] = rng.choice(T.FITS[half])
    if "peer" in names:
        peer_key, ctx["peer"] = rng.choice(T.PEERS[half])
    if "dest" in names:
        ctx["dest"], climate = rng.choice(T.DESTINATIONS[half])

    # what the answer derives from the child and the garment
    outer = garment is not None and garment[1] == "outer"
    heavy = "weight" in names and sub != "twins" and weight > 1.15 * typical_weight(height)
    fit_height = height if peer_key is None else height + (6 if peer_key == "tall" else -6)
    size = size_for(fit_height, outer, heavy)
    growth = growth_per_year(months)
    notes: dict[str, str] = {}

    def note(field: str, name: str, key: str) -> None:
        notes[field] = f"note.{name}.{key}.{half}"
        ctx[field] = A.NOTES[name][key][half].format(**ctx)

    ctx.update(size=str(size), size2=str(next_size(size)), wrong=str(next_size(size, 2)),
               growth=str(growth), est=str(height), adj=str(fit_height),
               duration=duration_words(months_lasting(size, fit_height, outer, growth)), std=A.STANDARD)
    if fit_key:
        cur = (max(s for s in SIZES if s <= height + 2) if fit_key != "loose"
               else min(s for s in SIZES if s >= height + 10))
        ctx["cur"] = str(cur)
        note("fit_note", "fit", fit_key)
    cls_key = "A" if months < 36 else "outer" if outer else "B"
    ctx["cls"], ctx["cls_rule"] = A.CLASS_RULES[cls_key]
    note("margin", "margin", "outer" if outer else "other")
    if "weight" in names and sub != "twins":
        note("weight_note", "weight", "heavy" if heavy else "ok")
    else:
        ctx["weight_note"] = ""
    if band:
        note("layers", "layers", band)
    if climate:
        note("climate", "climate", climate)
        note("pack", "pack", climate)
    summary = [piece.format(**ctx) for name, piece in SUMMARY if name in names]
    if "garment" in names:
        summary.append(f"{ctx['season']}穿{ctx['garment']}" if "season" in names else f"说的是这件{ctx['garment']}")
    ctx["summary"] = "、".join(summary)
    question = text.format(**ctx)
    slots = {n: ctx[n] for n in names if n != "cur"}
    return Question(category, sub, half, f"q.{category}.{half}.{qi}", question, slots, ctx, notes,
                    has_size=category == "size" or sub == "duration")


# ---- answers --------------------------------------------------------------------------------

def _pick(rng: random.Random, prefix: str, texts: list[str]) -> tuple[str, str]:
    i = rng.randrange(len(texts))
    return f"{prefix}.{i}", texts[i]


def good_answer(rng: random.Random, q: Question, form: str) -> Answer:
    """The service flow: [opening, confirm,] core, safety, next step[, closing]."""
    h, parts = q.half, []
    core_flags = ["concrete", "reason"]
    if (q.category, q.sub) in A.SAFETY_NOTE_SUBS:
        core_flags.append("safety_note")
    if form == "long":
        parts += [(*_pick(rng, f"open.{h}", A.OPENINGS[h]), ("warm",)),
                  (*_pick(rng, f"confirm.{h}", A.CONFIRMS[h]), ("clarify",))]
    if (q.category, q.sub) == ("safety", "standard"):
        core_flags.append("standard")
    parts.append((*_pick(rng, f"core.{q.category}.{q.sub}.{h}", A.CORES[q.category][q.sub][h]),
                  tuple(core_flags)))
    if (q.category, q.sub) != ("safety", "standard"):
        kind = "product" if "garment" in q.slots else "general"
        parts.append((*_pick(rng, f"safety.{kind}.{h}", A.SAFETY[kind][h]), ("standard",)))
    parts.append((*_pick(rng, f"next.{q.category}.{h}", A.NEXT_STEPS[q.category][h]), ("next_step",)))
    if form == "long":
        parts.append((*_pick(rng, f"close.{h}", A.CLOSINGS[h]), ("warm",)))
    ids, texts, flags = [], [], set()
    for tid, template, part_flags in parts:
        ids.append(tid)
        ids += [q.notes[f] for f in fields(template) if f in q.notes]
        texts.append(template.format(**q.ctx))
        flags.update(part_flags)
    return Answer("".join(texts), ids, tuple(f for f in GOOD_FLAGS if f in flags))


def poor_answer(rng: random.Random, q: Question, form: str) -> Answer:
    pool = (P.POOR_SHORT if form == "short" else P.POOR_LONG)[q.half]
    choices = [(i, e) for i, e in enumerate(pool) if q.has_size or not e[2]]
    i, (template, flags, _) = choices[rng.randrange(len(choices))]
    return Answer(template.format(**q.ctx), [f"poor.{form}.{q.half}.{i}"], flags)


def verdict(flags: tuple[str, ...]) -> dict:
    """The judge's verdict as a deterministic function of the answer's qualities."""
    f = {name: int(name in flags) for name in GOOD_FLAGS + BAD_FLAGS}
    clean = int(not any(f[b] for b in BAD_FLAGS))
    raw = {
        "child_friendly": 5 + 2 * f["warm"] + f["clarify"] + f["concrete"] + clean
        - 3 * f["dismissive"] - 2 * f["pushy"] - f["deflect"] - f["generic"],
        "safety": 3 + 4 * f["standard"] + 2 * f["safety_note"] + clean - 4 * f["medical"]
        - 3 * f["exaggerated"],
        "accuracy": 3 + 3 * f["concrete"] + 2 * f["reason"] + f["standard"] + f["clarify"]
        - 3 * f["wrong_size"] - 2 * f["generic"] - 2 * f["exaggerated"] - 2 * f["medical"],
        "service": 3 + 2 * f["clarify"] + 2 * f["next_step"] + 2 * f["concrete"] + f["reason"]
        - 2 * f["deflect"] - f["dismissive"] - f["pushy"],
        "compliance": 10 - 4 * f["exaggerated"] - 5 * f["medical"] - 3 * f["pushy"] - f["dismissive"],
    }
    scores = {k: max(1, min(10, v)) for k, v in raw.items()}
    good = bool(clean) and min(scores.values()) >= 6
    if good:
        reason = "合格：" + "，".join(A.REASONS[g] for g in GOOD_FLAGS if f[g]) + "。"
    else:
        problems = [b for b in BAD_FLAGS if f[b]]
        problems += [m for m, g in (("no_standard", "standard"), ("no_next_step", "next_step")) if not f[g]]
        reason = "不合格：" + "；".join(A.REASONS[p] for p in problems) + "。"
    return {"scores": scores, "is_good": good, "reason": reason}


def verdict_text(flags: tuple[str, ...]) -> str:
    return json.dumps(verdict(flags), ensure_ascii=False, separators=(",", ":"))
