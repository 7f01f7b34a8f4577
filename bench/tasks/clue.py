"""CLUE sets present in the data dir: afqmc (dev), ocnli (dev), c3 (dev, test).

All three reproduce OpenCompass 0.5.4 (`CLUE_<x>_gen.py` / `CLUE_<x>_ppl.py` defaults, named in
`source`). Differences from OpenCompass, on purpose:

- ocnli: the 50 dev records labelled "-" (no annotator majority) are dropped in both modes
  (2950 samples). OpenCompass's gen loader (CMNLIDatasetV2) drops them too, but its ppl config
  loads the file with HFDataset and keeps them: 3000 items, 50 of which can never be right, so
  OpenCompass's ppl accuracy = ours × 2950 / 3000.
- c3: OpenCompass reads one file (`data/CLUE/C3/dev_0.json`, not in any public repo we have). Here
  dev = c3-d-dev + c3-m-dev (3816 questions, CLUE's C3 dev) and test = c3-d-test + c3-m-test
  (3892), d before m. Questions have 2-4 choices; like OpenCompass, gen pads the list to 4 with
  "[NULL]" (so options C/D may read "[NULL]") and ppl pads with copies of the first choice (a
  copy never wins: the first minimum does). Gen joins paragraphs with "", ppl with " " (the two
  OpenCompass loaders differ). Sample ids are "<file>#<doc>.<question>".
"""

from __future__ import annotations

from bench.tasks.spec import TaskSpec


def _blank(record: dict) -> dict:
    return {**record, "label": ""}


_AFQMC_Q = ("语句一：“{sentence1}”\n语句二：“{sentence2}”\n"
            "语句一与语句二是关于蚂蚁金融产品的疑问，两者所询问的内容是否完全一致？")
AFQMC = TaskSpec(
    name="afqmc", files={"dev": ("clue/afqmc/dev.json",)}, labels=("0", "1"),
    gen_template=(("HUMAN", _AFQMC_Q + "\nA. 不完全一致\nB. 完全一致\n请从“A”，“B”中进行选择。\n答："),),
    ppl_templates={"0": (("HUMAN", _AFQMC_Q), ("BOT", "不完全一致")),
                   "1": (("HUMAN", _AFQMC_Q), ("BOT", "完全一致"))},
    gold=lambda r: r["label"], prepare_gen=_blank, prepare_ppl=dict,
    source="opencompass 0.5.4 CLUE_afqmc_gen_901306 + CLUE_afqmc_ppl_6507d7",
)

_OCNLI_Q = "语句一：“{sentence1}”\n语句二：“{sentence2}”\n请问这两句话是什么关系？"
OCNLI = TaskSpec(
    name="ocnli", files={"dev": ("clue/ocnli/dev.json",)},
    labels=("entailment", "contradiction", "neutral"),
    # sic: " B." and " C." carry a leading space in OpenCompass's template
    gen_template=(("HUMAN", _OCNLI_Q + "\nA. 蕴含\n B. 矛盾\n C. 无关\n请从“A”，“B”，“C”中进行选择。\n答："),),
    ppl_templates={"contradiction": (("HUMAN", _OCNLI_Q), ("BOT", "矛盾")),
                   "entailment": (("HUMAN", _OCNLI_Q), ("BOT", "蕴含")),
                   "neutral": (("HUMAN", _OCNLI_Q), ("BOT", "无关"))},
    gold=lambda r: r["label"], prepare_gen=_blank, prepare_ppl=dict,
    skip=lambda r: r.get("label") == "-",
    skip_reason="label '-' (no annotator majority; OpenCompass drops these)",
    source="opencompass 0.5.4 CLUE_ocnli_gen_c4cb6c + CLUE_ocnli_ppl_fdc6de",
)


def _c3_gold(r: dict) -> int:
    return r["choice"].index(r["answer"])


def _c3_gen(r: dict) -> dict:
    """C3Dataset_V2."""
    choices = list(r["choice"]) + ["[NULL]"] * (4 - len(r["choice"]))
    item = {"content": "".join("".join(p) for p in r["context"]), "question": r["question"]}
    item.update({f"choice{i}": choices[i] for i in range(4)})
    item["label"] = ""
    return item


def _c3_ppl(r: dict) -> dict:
    """C3Dataset."""
    choices = list(r["choice"]) + [r["choice"][0]] * (4 - len(r["choice"]))
    item = {"content": " ".join("".join(p) for p in r["context"]), "question": r["question"]}
    item.update({f"choice{i}": choices[i] for i in range(4)})
    item.update(choices=choices, label=_c3_gold(r))
    return item


C3 = TaskSpec(
    name="c3",
    files={"dev": ("clue/c3/c3-d-dev.json", "clue/c3/c3-m-dev.json"),
           "test": ("clue/c3/c3-d-test.json", "clue/c3/c3-m-test.json")},
    labels=("0", "1", "2", "3"), reader="c3",
    gen_template=(("HUMAN", "{content}\n问：{question}\nA. {choice0}\nB. {choice1}\nC. {choice2}\n"
                            "D. {choice3}\n请从“A”，“B”，“C”，“D”中进行选择。\n答："),),
    ppl_templates={str(i): (("HUMAN", "文章：{content}\n问题：{question}"), ("BOT", f"答案：{{choice{i}}}"))
                   for i in range(4)},
    gold=_c3_gold, prepare_gen=_c3_gen, prepare_ppl=_c3_ppl,
    source="opencompass 0.5.4 CLUE_C3_gen_8c358f + CLUE_C3_ppl_e24a31",
)

SPECS: dict[str, TaskSpec] = {s.name: s for s in (AFQMC, OCNLI, C3)}
