"""The nine FewCLUE tasks. Splits: dev = dev_few_all.json, test = test_public.json.

Seven reproduce OpenCompass 0.5.4 byte for byte: the configs that `FewCLUE_<x>_gen.py` and
`FewCLUE_<x>_ppl.py` import (named in each spec's `source`) and their dataset loaders (the `V2`
loader for gen, the HF/`<X>Dataset` loader for ppl). tests/fixtures/oc_prompts holds OpenCompass's
own renderings, compared exactly in tests/test_tasks.py.

iflytek and csldcp are bench-defined (OpenCompass ships no config), in tnews's style: the gen
prompt lists every label, one per line, then `请从“1”，“2”，…中进行选择。\\n答：`; ppl has one
prompt per label with the label name as the answer turn. With 119 / 67 labels there are not enough
letters, so the options are numbered 1..N in the data's label order (iflytek: label id 0..118 →
option 1..119; csldcp: `labels_all.txt` order) and the answer is the first number in the output
(post-processor `first_number`). Scores on these two are bench's, not comparable with a letter scheme.
"""

from __future__ import annotations

from bench.tasks.spec import TaskSpec, letters_az


def _splits(folder: str) -> dict[str, tuple[str, ...]]:
    return {"dev": (f"fewclue/{folder}/dev_few_all.json",),
            "test": (f"fewclue/{folder}/test_public.json",)}


def _options(names, letters) -> str:
    return "\n".join(f"{letter}. {name}" for letter, name in zip(letters, names, strict=True))


def _choose(letters) -> str:
    return "，".join(f"“{letter}”" for letter in letters)


def _blank(record: dict, column: str = "label") -> dict:
    """The loader's row with the output column blanked, as GenInferencer does."""
    return {**record, column: ""}


# ---- bustm (AFQMCDatasetV2 / HFDataset) ----
_BUSTM_Q = "语句一：“{sentence1}”\n语句二：“{sentence2}”\n请判断语句一和语句二说的是否是一个意思？"
BUSTM = TaskSpec(
    name="bustm", files=_splits("bustm"), labels=("0", "1"),
    gen_template=(("HUMAN", _BUSTM_Q + "\nA. 无关\nB. 相关\n请从“A”，“B”中进行选择。\n答："),),
    ppl_templates={"0": (("HUMAN", _BUSTM_Q), ("BOT", "两句话说的毫不相关。")),
                   "1": (("HUMAN", _BUSTM_Q), ("BOT", "两句话说是的一个意思。"))},
    gold=lambda r: r["label"], prepare_gen=_blank, prepare_ppl=dict,
    source="opencompass 0.5.4 FewCLUE_bustm_gen_634f41 + FewCLUE_bustm_ppl_e53034",
)

# ---- ocnli_fc (CMNLIDatasetV2 / HFDataset) ----
OCNLI_FC = TaskSpec(
    name="ocnli_fc", files=_splits("ocnli"), labels=("entailment", "contradiction", "neutral"),
    gen_template=(("HUMAN", "阅读文章：{sentence1}\n根据上文，回答如下问题：{sentence2}\nA. 对\nB. 错\n"
                            "C. 可能\n请从“A”，“B”，“C”中进行选择。\n答："),),
    ppl_templates={
        "contradiction": "阅读文章：{sentence1}\n根据上文，回答如下问题： {sentence2}？\n答：错",
        "entailment": "阅读文章：{sentence1}\n根据上文，回答如下问题： {sentence2}？\n答：对",
        "neutral": "如果{sentence1}为真，那么{sentence2}也为真吗?可能",
    },
    gold=lambda r: r["label"], prepare_gen=_blank, prepare_ppl=dict,
    skip=lambda r: r.get("label") == "-",
    source="opencompass 0.5.4 FewCLUE_ocnli_fc_gen_f97a97 + FewCLUE_ocnli_fc_ppl_c08300",
)

# ---- eprstmt (EprstmtDatasetV2 / HFDataset) ----
EPRSTMT = TaskSpec(
    name="eprstmt", files=_splits("eprstmt"), labels=("Positive", "Negative"),
    gen_template=(("HUMAN", '内容： "{sentence}"。请对上述内容进行情绪分类。\nA. 积极\nB. 消极\n'
                            "请从”A“，”B“中进行选择。\n答："),),
    ppl_templates={"Negative": (("HUMAN", '内容： "{sentence}"。情绪分类：'), ("BOT", "消极。")),
                   "Positive": (("HUMAN", '内容： "{sentence}"。情绪分类：'), ("BOT", "积极。"))},
    gold=lambda r: r["label"],
    prepare_gen=lambda r: {"sentence": r["sentence"], "label": ""}, prepare_ppl=dict,
    source="opencompass 0.5.4 FewCLUE_eprstmt_gen_740ea0 + FewCLUE_eprstmt_ppl_f1e631",
)

# ---- tnews (TNewsDatasetV2 / TNewsDataset); gold is label_desc, the int label as a fallback ----
TNEWS_ZH = {  # OpenCompass's order = letters A..O
    "news_agriculture": "农业新闻", "news_travel": "旅游新闻", "news_game": "游戏新闻",
    "news_tech": "科技类别公司新闻", "news_sports": "体育类别新闻", "news_edu": "初升高教育新闻",
    "news_entertainment": "娱乐圈新闻", "news_finance": "投资资讯", "news_military": "军事类别常识",
    "news_car": "车辆新闻", "news_house": "楼市新闻", "news_world": "环球不含中国类别新闻",
    "news_culture": "书籍文化历史类别新闻", "news_story": "故事类别新闻", "news_stock": "股票市场类别新闻",
}
TNEWS_IDS = {  # label id → label_desc (105 and 111 unused), from label_index2en2zh.json
    100: "news_story", 101: "news_culture", 102: "news_entertainment", 103: "news_sports",
    104: "news_finance", 106: "news_house", 107: "news_car", 108: "news_edu", 109: "news_tech",
    110: "news_military", 112: "news_travel", 113: "news_world", 114: "news_stock",
    115: "news_agriculture", 116: "news_game",
}


def _tnews_gold(r: dict) -> str:
    if "label_desc" in r:
        return r["label_desc"]
    return TNEWS_IDS[int(r["label"])]


_TNEWS_LETTERS = letters_az(len(TNEWS_ZH))
TNEWS = TaskSpec(
    name="tnews", files=_splits("tnews"), labels=tuple(TNEWS_ZH),
    gen_template=(("HUMAN", f"{{sentence}}\n请判断上述内容属于什么新闻？\n"
                            f"{_options(TNEWS_ZH.values(), _TNEWS_LETTERS)}\n"
                            f"请从{_choose(_TNEWS_LETTERS)}中进行选择。\n答："),),
    ppl_templates={lb: (("HUMAN", "{sentence}\n上述内容属于什么新闻？"), ("BOT", zh))
                   for lb, zh in TNEWS_ZH.items()},
    gold=_tnews_gold,
    prepare_gen=lambda r: {"sentence": r["sentence"], "label_desc2": ""},
    prepare_ppl=lambda r: {**r, "label_desc2": TNEWS_ZH[_tnews_gold(r)]},
    source="opencompass 0.5.4 FewCLUE_tnews_gen_b90e4a + FewCLUE_tnews_ppl_d10e8a",
)

# ---- chid (CHIDDatasetV2 / CHIDDataset) ----


def _chid_gen(r: dict) -> dict:
    item = {"content": r["content"].replace("#idiom#", "______")}
    for i, candidate in enumerate(r["candidates"]):
        item[chr(ord("A") + i)] = candidate
    item["answer"] = ""
    return item


def _chid_ppl(r: dict) -> dict:
    return {**r, **{f"content{i}": r["content"].replace("#idiom#", c)
                    for i, c in enumerate(r["candidates"])}}


CHID = TaskSpec(
    name="chid", files=_splits("chid"), labels=tuple(str(i) for i in range(7)),
    gen_template=(("HUMAN", "{content}\n请选择______处所填的词\nA. {A}\nB. {B}\nC. {C}\nD. {D}\nE. {E}\n"
                            "F. {F}\nG. {G}\n请从”A“，”B“，”C“，”D“，”E“，”F“，”G“中进行选择。答："),),
    ppl_templates={str(i): (("HUMAN", f"以下句子是否通顺？\n{{content{i}}}"), ("BOT", "这个句子是通顺的。"))
                   for i in range(7)},
    gold=lambda r: int(r["answer"]), prepare_gen=_chid_gen, prepare_ppl=_chid_ppl,
    source="opencompass 0.5.4 FewCLUE_chid_gen_0a29a2 + FewCLUE_chid_ppl_8f2872",
)

# ---- csl (CslDatasetV2 / CslDataset) ----
CSL = TaskSpec(
    name="csl", files=_splits("csl"), labels=("0", "1"),
    gen_template=(("HUMAN", "摘要是对论文内容不加注释和评论的简短陈述，要求扼要地说明研究工作的目的、研究方法和最终结论等。\n"
                            "关键词是一篇学术论文的核心词汇，一般由一系列名词组成。关键词在全文中应有较高出现频率，"
                            "且能起到帮助文献检索的作用。\n摘要：{abst}\n关键词：{keywords}\n"
                            "请问上述关键词是否匹配摘要且符合要求？\nA. 否\nB. 是\n请从”A“，”B“中进行选择。\n答："),),
    ppl_templates={"0": "摘要：{abst}", "1": "摘要：{abst}\n关键词：{keywords}"},
    gold=lambda r: r["label"],
    prepare_gen=lambda r: {"abst": r["abst"], "keywords": "，".join(r["keyword"]), "label": ""},
    prepare_ppl=lambda r: {**r, "keywords": "，".join(r["keyword"])},
    source="opencompass 0.5.4 FewCLUE_csl_gen_28b223 + FewCLUE_csl_ppl_841b62",
)

# ---- cluewsc (CluewscDatasetV2 / CluewscDataset); `idx` (dev) or `id` (test.json) is not used ----


def _wsc_ppl(r: dict) -> dict:
    target = r["target"]
    chars = list(r["text"])
    chars[target["span2_index"]] = target["span1_text"]  # OpenCompass swaps one character
    return {**r, "new_text": "".join(chars), "answer": 1 if r["label"] == "true" else 0,
            "span1": target["span1_text"], "span2": target["span2_text"]}


CLUEWSC = TaskSpec(
    name="cluewsc", files=_splits("cluewsc"), labels=("true", "false"),
    gen_template=(("HUMAN", "{text}\n此处，“{span2}”是否指代“{span1}“？\nA. 是\nB. 否\n"
                            "请从”A“，”B“中进行选择。\n答："),),
    ppl_templates={"false": (("HUMAN", "{text}\n此处，代词“{span2}“被用于指代“{span1}“吗?"), ("BOT", "否")),
                   "true": (("HUMAN", "{text}\n此处，代词“{span2}“被用于指代“{span1}“吗?"), ("BOT", "是"))},
    gold=lambda r: r["label"],
    prepare_gen=lambda r: {"span1": r["target"]["span1_text"], "span2": r["target"]["span2_text"],
                           "text": r["text"], "label": ""},
    prepare_ppl=_wsc_ppl,
    source="opencompass 0.5.4 FewCLUE_cluewsc_gen_c68933 + FewCLUE_cluewsc_ppl_868415",
)

# ---- iflytek and csldcp: bench-defined, numbered options ----
IFLYTEK_LABELS = (
    "打车", "地图导航", "免费WIFI", "租车", "同城服务", "快递物流", "婚庆", "家政", "公共交通", "政务",
    "社区服务", "薅羊毛", "魔幻", "仙侠", "卡牌", "飞行空战", "射击游戏", "休闲益智", "动作类", "体育竞技",
    "棋牌中心", "经营养成", "策略", "MOBA", "辅助工具", "约会社交", "即时通讯", "工作社交", "论坛圈子",
    "婚恋社交", "情侣社交", "社交工具", "生活社交", "微博博客", "新闻", "漫画", "小说", "技术", "教辅",
    "问答交流", "搞笑", "杂志", "百科", "影视娱乐", "求职", "兼职", "视频", "短视频", "音乐", "直播", "电台",
    "K歌", "成人", "中小学", "职考", "公务员", "英语", "视频教育", "高等教育", "成人教育", "艺术",
    "语言(非英语)", "旅游资讯", "综合预定", "民航", "铁路", "酒店", "行程管理", "民宿短租", "出国", "工具",
    "亲子儿童", "母婴", "驾校", "违章", "汽车咨询", "汽车交易", "日常养车", "行车辅助", "租房", "买房",
    "装修家居", "电子产品", "问诊挂号", "养生保健", "医疗服务", "减肥瘦身", "美妆美业", "菜谱", "餐饮店",
    "体育咨讯", "运动健身", "支付", "保险", "股票", "借贷", "理财", "彩票", "记账", "银行", "美颜", "影像剪辑",
    "摄影修图", "相机", "绘画", "二手", "电商", "团购", "外卖", "电影票务", "社区超市", "购物咨询", "笔记",
    "办公", "日程管理", "女性", "经营", "收款", "其他",
)  # index = label id
CSLDCP_LABELS = (  # labels_all.txt order
    "材料科学与工程", "作物学", "口腔医学", "药学", "教育学", "水利工程", "理论经济学", "食品科学与工程",
    "畜牧学/兽医学", "体育学", "核科学与技术", "力学", "园艺学", "水产", "法学", "地质学/地质资源与地质工程",
    "石油与天然气工程", "农林经济管理", "信息与通信工程", "图书馆、情报与档案管理", "政治学", "电气工程",
    "海洋科学", "民族学", "航空宇航科学与技术", "化学/化学工程与技术", "哲学", "公共卫生与预防医学", "艺术学",
    "农业工程", "船舶与海洋工程", "计算机科学与技术", "冶金工程", "交通运输工程", "动力工程及工程热物理",
    "纺织科学与工程", "建筑学", "环境科学与工程", "公共管理", "数学", "物理学", "林学/林业工程", "心理学",
    "历史学", "工商管理", "应用经济学", "中医学/中药学", "天文学", "机械工程", "土木工程", "光学工程",
    "地理学", "农业资源利用", "生物学/生物科学与工程", "兵器科学与技术", "矿业工程", "大气科学",
    "基础医学/临床医学", "电子科学与技术", "测绘科学与技术", "控制科学与工程", "军事学", "中国语言文学",
    "新闻传播学", "社会学", "地球物理学", "植物保护",
)


def _numbered(n: int) -> tuple[str, ...]:
    return tuple(str(i + 1) for i in range(n))


def _iflytek_gold(r: dict) -> int:
    if "label" in r:
        return int(r["label"])
    return IFLYTEK_LABELS.index(r["label_des"])


_IFLYTEK_NUMS = _numbered(len(IFLYTEK_LABELS))
IFLYTEK = TaskSpec(
    name="iflytek", files=_splits("iflytek"), labels=tuple(str(i) for i in range(len(IFLYTEK_LABELS))),
    letters=_IFLYTEK_NUMS, postprocess="first_number",
    gen_template=(("HUMAN", f"{{sentence}}\n请判断上述应用描述属于哪一类应用？\n"
                            f"{_options(IFLYTEK_LABELS, _IFLYTEK_NUMS)}\n"
                            f"请从{_choose(_IFLYTEK_NUMS)}中进行选择。\n答："),),
    ppl_templates={str(i): (("HUMAN", "{sentence}\n上述应用描述属于哪一类应用？"), ("BOT", name))
                   for i, name in enumerate(IFLYTEK_LABELS)},
    gold=_iflytek_gold,
    prepare_gen=lambda r: {"sentence": r["sentence"], "label": ""}, prepare_ppl=dict,
    source="bench-defined (tnews style, numbered options)",
)

_CSLDCP_NUMS = _numbered(len(CSLDCP_LABELS))
CSLDCP = TaskSpec(
    name="csldcp", files=_splits("csldcp"), labels=CSLDCP_LABELS,
    letters=_CSLDCP_NUMS, postprocess="first_number",
    gen_template=(("HUMAN", f"{{content}}\n请判断上述论文摘要属于哪个学科？\n"
                            f"{_options(CSLDCP_LABELS, _CSLDCP_NUMS)}\n"
                            f"请从{_choose(_CSLDCP_NUMS)}中进行选择。\n答："),),
    ppl_templates={name: (("HUMAN", "{content}\n上述论文摘要属于哪个学科？"), ("BOT", name))
                   for name in CSLDCP_LABELS},
    gold=lambda r: r["label"],
    prepare_gen=lambda r: {"content": r["content"], "label": ""}, prepare_ppl=dict,
    source="bench-defined (tnews style, numbered options)",
)

SPECS: dict[str, TaskSpec] = {
    s.name: s for s in (BUSTM, OCNLI_FC, EPRSTMT, CSLDCP, TNEWS, IFLYTEK, CHID, CSL, CLUEWSC)
}
