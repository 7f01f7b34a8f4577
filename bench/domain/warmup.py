"""Multiple-choice warm-up rows for a tiny demo candidate, seeded and byte-for-byte reproducible.

    python -m bench.domain.warmup [--seed 0] [--out bench/domain/data/warmup_train.jsonl]

The demo's candidates are random-weight tiny models; in gen mode they rarely write a capital letter,
so every FewCLUE score is near 0 and a selection stage has nothing to pick. These rows "pre-train a
little" (bench/domain/kids-warmup.yaml): each is one user turn in the layout of OpenCompass's FewCLUE
`_gen` prompts (zero-shot; a question, option lines `A. …`, the line `请从“A”，“B”…中进行选择。`,
then `答：`) and an assistant turn that is the correct letter and nothing else.

The content is the kids-clothing shop's, written here: sizes by height (the domain's `size_for`
rule), GB 31701-2015 safety classes by age and skin contact, fabrics and outfits, the mood of shop
reviews (积极/消极), whether two customers ask the same thing (相关/无关), what a product note says
(对/错/可能), what a pronoun refers to (是/否), whether tags fit a product (是/否), which kind of
question a parent asks. Nothing is read from FewCLUE/CLUE data or bench's bundled demo data; slot
values come from the training half of bench/domain/templates.py only. Options number 2 to 4; answer
letters are spread over A-D (label sets keep FewCLUE's fixed order, so A and B lead).

The rows are written only when no held-out question (heldout_open.jsonl, heldout_pairs.jsonl)
shares a 13-character span with them (bench.train.decontam, the check `bench train` runs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.domain import DATA_DIR
from bench.domain import templates as T
from bench.domain.compose import SIZES, size_for

OUT = DATA_DIR / "warmup_train.jsonl"
HELD_OUT = (DATA_DIR / "heldout_open.jsonl", DATA_DIR / "heldout_pairs.jsonl")
LETTERS = "ABCD"

# ---- the _gen layout ------------------------------------------------------------------------


def choose_line(letters: str, curly: bool) -> str:
    """`请从“A”，“B”中进行选择。` (bustm, ocnli, tnews) or with the quotes the other way round, as
    eprstmt, csl and cluewsc write them (`请从”A“，”B“中进行选择。`)."""
    left, right = ("“", "”") if curly else ("”", "“")
    return "请从" + "，".join(f"{left}{x}{right}" for x in letters) + "中进行选择。"


def render(question: str, options: list[str], curly: bool = True) -> str:
    letters = LETTERS[:len(options)]
    lines = [question, *(f"{x}. {o}" for x, o in zip(letters, options, strict=True)),
             choose_line(letters, curly), "答："]
    return "\n".join(lines)


Item = tuple[str, list[str], int, bool]  # question, options, index of the right one, curly quotes
Maker = Callable[[random.Random, str], Item]  # (rng, the answer letter wanted) → item

# ---- slot values (training half of the domain only) -------------------------------------------

PROFILES = T.PROFILES["train"]  # (age words, months, height cm, weight 斤)
GARMENTS = [(g[0], g[1] == "outer") for g in T.GARMENTS["train"]]  # (name, worn over layers)
SEASON_WORDS = ["春天", "夏天", "秋天", "冬天"]
COLOURS = T.COLOURS["train"] + ["白色", "灰色", "红色"]
CHARACTERS = T.CHARACTERS["train"]
FABRICS = ["纯棉", "精梳棉", "涤纶", "棉氨纶", "摇粒绒", "羊毛"]
ADULTS = [("妈妈", "她"), ("爸爸", "他"), ("奶奶", "她"), ("爷爷", "他"), ("外婆", "她"), ("姥爷", "他")]
CHILDREN = [("小明", "他"), ("朵朵", "她"), ("乐乐", "他"), ("甜甜", "她"), ("豆豆", "他"), ("妞妞", "她")]


def _shuffled(rng: random.Random, right: str, wrong: list[str], n: int, at: int) -> tuple[list[str], int]:
    """n options: `right` at index `at`, the others drawn from `wrong` in random order."""
    others = rng.sample(wrong, n - 1)
    return others[:at] + [right] + others[at:], at


def _n_for(rng: random.Random, at: int) -> int:
    """How many options a shuffled item shows when the answer is the at-th (2 to 4)."""
    return rng.randint(max(2, at + 1), 4)


# ---- items with shuffled options (any letter) -------------------------------------------------

def size_item(rng: random.Random, letter: str) -> Item:
    age, _, height, _ = rng.choice(PROFILES)
    garment, outer = rng.choice(GARMENTS)
    right = size_for(height, outer)
    wrong = [f"{s}码" for s in SIZES if s != right and abs(SIZES.index(s) - SIZES.index(right)) <= 3]
    at = LETTERS.index(letter)
    options, at = _shuffled(rng, f"{right}码", wrong, _n_for(rng, at), at)
    question = rng.choice([
        "孩子{age}，身高{height}厘米，买{garment}选哪个尺码最合适？",
        "身高{height}厘米的宝宝（{age}），{garment}应该拿几码？",
        "按身高选码：{age}的孩子{height}厘米，这件{garment}买多大的？",
    ]).format(age=age, height=height, garment=garment)
    return question, options, at, True


CLASS_NAMES = ["A类", "B类", "C类"]


def class_item(rng: random.Random, letter: str) -> Item:
    age, months, _, _ = rng.choice(PROFILES)
    garment, _ = rng.choice(GARMENTS)
    skin = rng.random() < 0.5
    contact = "贴身穿、直接接触皮肤的" if skin else "穿在最外面、不直接接触皮肤的"
    right = "A类" if months < 36 else "B类" if skin else "C类"
    at = min(LETTERS.index(letter), 2)
    n = rng.randint(max(2, at + 1), 3)
    options, at = _shuffled(rng, right, [c for c in CLASS_NAMES if c != right], n, at)
    question = rng.choice([
        "按GB 31701-2015，给{age}的孩子买{contact}{garment}，至少要达到哪个安全技术类别？",
        "孩子{age}，想买{contact}{garment}。依照国标GB 31701-2015，最低应选哪一类？",
    ]).format(age=age, contact=contact, garment=garment)
    return question, options, at, True


TOPICS = {  # category name → short parents' questions of that kind ({g} a garment)
    "尺码建议": ["孩子一米一，{g}拿几码？", "{g}偏大还是偏小，要不要拍大一码？", "宝宝脚长，{g}的裤长够吗？",
             "去年的{g}穿着紧了，今年换几码？"],
    "安全知识": ["{g}上的小扣子会不会被宝宝咬下来？", "{g}的甲醛含量达标吗？", "{g}帽子上的绳子要剪掉吗？",
             "{g}有没有检测报告？"],
    "生活习惯": ["宝宝天天在地上爬，{g}膝盖耐磨吗？", "孩子在练习自己上厕所，{g}好脱吗？",
             "儿子一身汗跑回家，{g}吸汗吗？", "孩子刚会走路，{g}会不会绊脚？"],
    "季节穿搭": ["零下五度出门，{g}里面穿几件？", "春秋早晚温差大，{g}怎么搭？", "寒假去北方玩，{g}够暖和吗？",
             "夏天穿{g}会不会闷？"],
    "心理与喜好": ["孩子只肯穿{c}，{g}有这个颜色吗？", "女儿迷上了{h}，{g}有这个图案吗？",
              "孩子内向，第一天上幼儿园穿{g}好吗？", "宝宝怕响声，{g}上有铃铛吗？"],
}


def topic_item(rng: random.Random, letter: str) -> Item:
    right = rng.choice(list(TOPICS))
    garment, _ = rng.choice(GARMENTS)
    text = rng.choice(TOPICS[right]).format(g=garment, c=rng.choice(COLOURS), h=rng.choice(CHARACTERS))
    at = LETTERS.index(letter)
    options, at = _shuffled(rng, right, [t for t in TOPICS if t != right], _n_for(rng, at), at)
    question = f"{text}\n" + rng.choice(["请判断上述家长咨询属于哪一类问题？", "上述提问属于哪一类童装咨询？"])
    return question, options, at, True


TEMPS = [(-10, 0), (-5, 0), (0, 0), (4, 0), (9, 1), (12, 1), (14, 1), (20, 2), (23, 2), (29, 3), (33, 3)]
OUTFITS = ["羽绒服加保暖内衣", "卫衣加长袖打底", "一件薄长袖", "短袖加短裤"]  # by temperature band


def outfit_item(rng: random.Random, letter: str) -> Item:
    temp, band = rng.choice(TEMPS)
    age = rng.choice(PROFILES)[0]
    right = OUTFITS[band]
    at = LETTERS.index(letter)
    options, at = _shuffled(rng, right, [o for o in OUTFITS if o != right], _n_for(rng, at), at)
    question = rng.choice([
        "今天室外{t}℃，带{age}的孩子出门玩，下面哪种穿法最合适？",
        "气温{t}度左右，{age}的宝宝去公园，穿什么比较好？",
    ]).format(t=temp, age=age)
    return question, options, at, True


ADVICE = [  # (question, right answer, wrong answers)
    ("宝宝皮肤敏感，贴身的{g}选哪种面料最好？", "纯棉", ["涤纶", "亮片纱", "粗羊毛", "尼龙网布"]),
    ("{age}的宝宝爱啃衣服，{g}上哪种扣子最稳妥？", "压合牢固的按扣", ["小珠子装饰扣", "水钻扣", "缝得松的小木扣"]),
    ("孩子天天在地上爬，裤子膝盖处最好怎样？", "加厚双层布", ["镂空设计", "钉满亮片", "薄纱拼接"]),
    ("七岁以下孩子穿的连帽衫，帽子上的抽绳该怎么办？", "直接抽掉", ["再加长一些", "末端系个铃铛", "绕在脖子上"]),
    ("孩子正在戒尿不湿，裤子选哪种腰头？", "整圈松紧腰", ["多颗纽扣腰", "背带连体", "拉链加腰带"]),
    ("新买的{g}第一次给孩子穿之前应该怎么做？", "先用清水洗一遍", ["直接穿上", "喷点香水", "用漂白剂泡一夜"]),
    ("{age}的宝宝对声音敏感，{g}上要避开哪种装饰？", "铃铛和响纸", ["平整的印花", "柔软的罗纹", "纯色布面"]),
    ("孩子运动后一身汗，{g}选哪种面料更合适？", "透气吸汗的棉", ["不透气的涂层布", "厚重的呢子", "亮面皮革"]),
]


def advice_item(rng: random.Random, letter: str) -> Item:
    text, right, wrong = rng.choice(ADVICE)
    garment, _ = rng.choice(GARMENTS)
    age = rng.choice(PROFILES)[0]
    at = LETTERS.index(letter)
    options, at = _shuffled(rng, right, wrong, _n_for(rng, at), at)
    return text.format(g=garment, age=age), options, at, True


# ---- items with FewCLUE-style fixed label sets ------------------------------------------------

GOOD = ["面料软软的，孩子穿着很舒服", "做工很细致，几乎没有线头", "尺码很准，按身高买的正合适",
        "颜色和图片一样，很好看", "洗了好几次也没变形", "发货很快，包装也干净", "客服很耐心，帮忙选了尺码",
        "版型宽松，孩子跑跳很方便", "没有异味，拆开就能穿", "价格实在，已经回购第三次了"]
BAD = ["洗了一次就起球了", "线头特别多，做工粗糙", "尺码偏小，按身高买的穿不上", "味道很重，晾了几天还有",
       "颜色和图片差很多", "洗完缩水严重，短了一截", "扣子缝得不牢，一拽就掉", "面料发硬，孩子说扎得慌",
       "等了一个星期才发货", "客服半天不回，问题也没解决"]
GOOD_END = ["好评！", "推荐购买。", "很满意。", "下次还来。"]
BAD_END = ["不推荐。", "很失望。", "已经申请退货了。", "不会再买了。"]
OPENERS = ["给孩子买的{g}，", "{g}收到了，", "第二次买这家的{g}了，", "给{age}的宝宝买的{g}，"]


def review_item(rng: random.Random, letter: str) -> Item:
    good = letter == "A"
    garment, _ = rng.choice(GARMENTS)
    a, b = rng.sample(GOOD if good else BAD, 2)
    review = (rng.choice(OPENERS).format(g=garment, age=rng.choice(PROFILES)[0]) + f"{a}，{b}，"
              + rng.choice(GOOD_END if good else BAD_END))
    question = rng.choice([f'买家评价： "{review}"。请对上述评价进行情绪分类。',
                           f'顾客留言： "{review}"。请判断这条留言的情绪。'])
    return question, ["积极", "消极"], 0 if good else 1, False


INTENTS = [  # one thing a customer asks, in several words ({g} a garment)
    ["{g}尺码不合适能换吗？", "买的{g}小了，可以换大一码吗？", "收到的{g}穿不上，怎么换货？"],
    ["今天下单什么时候发货？", "拍了{g}，几天能发出？", "现在买{g}多久能寄出来？"],
    ["{g}可以机洗吗？", "这件{g}能不能放洗衣机洗？", "{g}要手洗还是机洗？"],
    ["{g}洗了会缩水吗？", "这件{g}下水以后会不会变小？", "{g}洗完会不会缩？"],
    ["{g}是什么面料的？", "这件{g}用的什么布料？", "{g}的材质是纯棉吗？"],
    ["{g}实物和图片颜色一样吗？", "这件{g}有没有色差？", "{g}拍出来的颜色准不准？"],
    ["{g}偏大还是偏小？", "这款{g}尺码标准吗？", "{g}是正常码数吗？"],
    ["买{g}包邮吗？", "{g}要另外付运费吗？", "这件{g}运费怎么算？"],
    ["{g}符合A类标准吗？", "这件{g}是婴幼儿A类的吗？", "{g}吊牌上的安全类别是A类吗？"],
    ["{g}会起球吗？", "这件{g}穿久了起不起毛球？", "{g}容易起球吗？"],
]


def same_item(rng: random.Random, letter: str) -> Item:
    related = letter == "B"
    garment, _ = rng.choice(GARMENTS)
    if related:
        q1, q2 = rng.sample(rng.choice(INTENTS), 2)
    else:
        i, j = rng.sample(INTENTS, 2)
        q1, q2 = rng.choice(i), rng.choice(j)
    q1, q2 = q1.format(g=garment), q2.format(g=garment)
    question = rng.choice([f"顾客甲：“{q1}”\n顾客乙：“{q2}”\n请判断两位顾客问的是否是同一件事？",
                           f"问题一：“{q1}”\n问题二：“{q2}”\n请判断这两个咨询是否是一个意思？"])
    return question, ["无关", "相关"], 1 if related else 0, True


NEUTRAL = ["这件{g}是今年的新款。", "这件{g}卖得很好。", "这件{g}正在打折。", "买这件{g}送一双袜子。",
           "这件{g}是南方的工厂做的。"]


def read_item(rng: random.Random, letter: str) -> Item:
    garment, _ = rng.choice(GARMENTS)
    fabric, other_fabric = rng.sample(FABRICS, 2)
    colour, colour2, other_colour = rng.sample(COLOURS, 3)
    cls, other_cls = rng.sample(CLASS_NAMES, 2)
    lo = rng.randrange(2, len(SIZES) - 4)
    small, big = SIZES[lo], SIZES[lo + 3]
    note = (f"这件{garment}的面料是{fabric}，安全类别为{cls}，有{colour}和{colour2}两种颜色，"
            f"尺码从{small}码到{big}码。")
    if letter == "A":
        claim = rng.choice([f"这件{garment}有{colour}的。", f"这件{garment}是{fabric}做的。",
                            f"这件{garment}有{SIZES[lo + 1]}码。", f"这件{garment}属于{cls}。"])
    elif letter == "B":
        claim = rng.choice([f"这件{garment}有{other_colour}的。", f"这件{garment}是{other_fabric}做的。",
                            f"这件{garment}有{SIZES[lo + 4]}码。", f"这件{garment}属于{other_cls}。"])
    else:
        claim = rng.choice(NEUTRAL).format(g=garment)
    question = rng.choice([f"阅读商品说明：{note}\n根据上文，判断这句话：{claim}",
                           f"商品详情：{note}\n根据详情，下面的说法对吗：{claim}"])
    return question, ["对", "错", "可能"], "ABC".index(letter), True


PRONOUN_TEXTS = [  # (text, who the pronoun P stands for: "adult" or "child")
    ("{A}给{C}买了一件{g}，{P}穿上以后高兴得直转圈。", "child"),
    ("{C}的{g}破了个洞，{A}看见了，{P}连夜把洞补好了。", "adult"),
    ("{A}带{C}去店里挑{g}，{P}一直说想要{c}的。", "child"),
    ("{C}不肯穿{A}买的{g}，{P}嫌上面的图案太幼稚。", "child"),
    ("{A}把{g}洗干净晾好，{P}叮嘱{C}明天记得穿上。", "adult"),
    ("{A}给{C}量了身高，{P}说这件{g}要买大一码。", "adult"),
]


def pronoun_item(rng: random.Random, letter: str) -> Item:
    text, who = rng.choice(PRONOUN_TEXTS)
    adult, a_pron = rng.choice(ADULTS)
    child, c_pron = rng.choice([c for c in CHILDREN if c[1] != a_pron])
    garment, _ = rng.choice(GARMENTS)
    pron = a_pron if who == "adult" else c_pron
    text = text.format(A=adult, C=child, P=pron, g=garment, c=rng.choice(COLOURS))
    right, other = (adult, child) if who == "adult" else (child, adult)
    span = right if letter == "A" else other
    question = f"{text}\n此处，“{pron}”是否指代“{span}“？"
    return question, ["是", "否"], 0 if letter == "A" else 1, False


FEATURES = ["领口有罗纹收边", "裤脚是松紧收口", "膝盖处双层加厚", "前开襟设计", "吊牌外置不磨皮肤"]


def tags_item(rng: random.Random, letter: str) -> Item:
    garment, _ = rng.choice(GARMENTS)
    fabric, other_fabric = rng.sample(FABRICS, 2)
    season, other_season = rng.sample(SEASON_WORDS, 2)
    colour = rng.choice(COLOURS)
    desc = f"{colour}{garment}，{fabric}面料，适合{season}穿，{rng.choice(FEATURES)}。"
    tags = [garment, fabric, season]
    if letter == "A":  # one tag the description does not support
        k = rng.randrange(3)
        tags[k] = [rng.choice([g for g, _ in GARMENTS if g != garment]), other_fabric, other_season][k]
    rng.shuffle(tags)
    question = (f"商品描述：{desc}\n商品标签：{'，'.join(tags)}\n"
                + rng.choice(["请问上述标签是否都符合商品描述？", "上述标签和商品描述是否一致？"]))
    return question, ["否", "是"], 0 if letter == "A" else 1, False


# kind → (maker, rows, the answer letters it cycles through)
KINDS: dict[str, tuple[Maker, int, str]] = {
    "review": (review_item, 48, "AB"),
    "same": (same_item, 48, "AB"),
    "pronoun": (pronoun_item, 40, "AB"),
    "tags": (tags_item, 40, "AB"),
    "read": (read_item, 48, "ABC"),
    "class": (class_item, 32, "ABC"),
    "size": (size_item, 64, "CDDBCDAD"),
    "topic": (topic_item, 56, "DCDACDBD"),
    "outfit": (outfit_item, 32, "CDACDBDC"),
    "advice": (advice_item, 48, "DCBDCDAC"),
}


def build(seed: int = 0) -> list[dict]:
    """The rows, in a seeded order: {"messages": [user prompt, assistant letter]}."""
    rng = random.Random(seed)
    plan = [(kind, KINDS[kind][2][i % len(KINDS[kind][2])])
            for kind in KINDS for i in range(KINDS[kind][1])]
    rng.shuffle(plan)
    rows, seen = [], set()
    for kind, letter in plan:
        for _ in range(200):
            question, options, at, curly = KINDS[kind][0](rng, letter)
            prompt = render(question, options, curly)
            if prompt not in seen:
                break
        else:
            raise ValueError(f"too few distinct {kind} items")
        seen.add(prompt)
        assert LETTERS[at] == letter, (kind, letter, options)
        rows.append({"messages": [{"role": "user", "content": prompt},
                                  {"role": "assistant", "content": letter}]})
    return rows


def heldout_overlaps(rows: list[dict], held_out=HELD_OUT) -> list:
    """Held-out questions sharing a 13-character span with the rows (bench train's check)."""
    from bench.train.decontam import heldout_texts, overlaps, read_rows

    train = [(f"L{i}", "\n".join(m["content"] for m in r["messages"])) for i, r in enumerate(rows, 1)]
    items = [(f"{Path(p).name}:{hid}", text) for p in held_out for hid, text in heldout_texts(read_rows(p))]
    return overlaps(train, items)


def dumps(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def write(seed: int = 0, out: Path = OUT) -> list[dict]:
    """Build, check against the held-out sets, write atomically. Raises ValueError on overlap."""
    rows = build(seed)
    found = heldout_overlaps(rows)
    if found:
        raise ValueError(f"{len(found)} held-out questions overlap the warm-up rows, e.g. "
                         f"{found[0].id}: {found[0].span!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(dumps(rows))
    os.replace(tmp, out)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.domain.warmup",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT, help=f"output file (default {OUT})")
    args = parser.parse_args(argv)
    try:
        rows = write(args.seed, args.out)
    except ValueError as exc:
        print(f"warm-up rows not written: {exc}", file=sys.stderr)
        return 1
    letters = Counter(r["messages"][1]["content"] for r in rows)
    print(f"wrote {len(rows)} rows to {args.out}; answers "
          + ", ".join(f"{x} {letters[x]}" for x in LETTERS) + "; held-out overlaps 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
