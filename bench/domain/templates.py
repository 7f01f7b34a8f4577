"""Parents' questions and the slot values that fill them, as data.

Every list is split into "train" and "heldout" halves that share nothing: the held-out rows use
question wordings and slot values (ages, heights, weights, garments, brands, seasons, temperatures,
destinations, characters, colours) that no training row uses, and generate.py checks that on the
written text. A question template is (sub-kind, text) or (sub-kind, text, garment tag it needs);
its {slots} are the names below. {cur} (the size the child wears now) is derived, not a slot.
"""

from __future__ import annotations

SYSTEM = "你是一家童装店的资深客服顾问。"

CATEGORIES = {  # key → name in the rubric's words (domain.md, "Question categories")
    "size": "尺码建议",
    "safety": "安全知识",
    "habits": "生活习惯",
    "season": "季节穿搭",
    "taste": "心理与喜好",
}

QUESTIONS = {
    "size": {
        "train": [
            ("basic", "宝宝{age}，身高{height}，体重{weight}，{season}想给他买件{garment}，穿多大码合适？"),
            ("basic", "请问{height}、{weight}的孩子，{garment}选哪个码？孩子{age}了，{season}穿。"),
            ("basic", "孩子{age}，{height}，{weight}，打算买你们家的{garment}{season}穿，拿不准尺码，"
                      "能帮忙推荐一下吗？"),
            ("brand", "女儿{age}，身高{height}，现在穿{brand}的{cur}码{garment}，{fit}，你们家的该买几码？"),
            ("brand", "我家孩子{age}，身高{height}，平时穿{brand}家{cur}码，{fit}。想在你们这儿买{garment}，"
                      "{season}穿，选多大的？"),
            ("peer", "儿子{age}，{peer}，没量过身高，{garment}买多大码比较好？"),
            ("twins", "双胞胎兄弟{age}，身高都是{height}左右，一个{weight}，一个{weight2}，{garment}要买一样的码吗？"),
        ],
        "heldout": [
            ("basic", "想咨询下尺码：小朋友{age}，{height}高，{weight}重，准备{season}穿的{garment}，您看买哪一码？"),
            ("brand", "我们之前一直买{brand}，{cur}码现在{fit}。同样的身材，在你们店里拍{garment}要拍几码？"
                      "孩子{age}，{height}。"),
            ("peer", "闺女{age}，{peer}，家里没有尺子量，{garment}大概拿哪个码？"),
            ("twins", "家里是对龙凤胎，{age}，都差不多{height}，可体重差得多，{weight}和{weight2}，{garment}各买几码？"),
        ],
    },
    "safety": {
        "train": [
            ("button", "宝宝{age}，正在长牙，逮到什么都咬，{garment}上的扣子会不会被咬掉？", "buttons"),
            ("button", "{age}的宝宝老爱啃衣服，你们家{garment}的按扣牢不牢？", "buttons"),
            ("drawstring", "孩子{age}，{garment}帽子上的抽绳安全吗？要不要剪掉？", "hood_cord"),
            ("chemistry", "新买的{garment}要不要先洗？{age}的宝宝，怕有甲醛。"),
            ("skin", "宝宝{age}，皮肤敏感，一热就起小红疹，{garment}选什么面料好？"),
            ("standard", "你们家的{garment}符合国标吗？孩子{age}，贴身穿的。", "inner"),
            ("standard", "给{age}的孩子买{garment}，安全类别要看哪一项？"),
        ],
        "heldout": [
            ("button", "我家{age}的娃口欲期，衣服扣子都往嘴里送，这件{garment}的纽扣会不会松？", "buttons"),
            ("drawstring", "这款{garment}腰上有根绳子，{age}的小孩穿会有危险吗？", "waist_cord"),
            ("chemistry", "听说有的童装甲醛超标、酸碱度不合格，你们这件{garment}给{age}的宝宝穿靠谱吗？"),
            ("skin", "娃{age}，医生说是特应性皮炎体质，{garment}该怎么挑？"),
            ("standard", "{garment}吊牌上写的A类、B类是啥意思？宝宝{age}。"),
        ],
    },
    "habits": {
        "train": [
            ("crawl", "宝宝{age}，现在天天满床爬，{garment}膝盖那块很快就磨破了，有没有耐磨一点的？"),
            ("crawl", "{age}的宝宝刚学会爬，{garment}要怎么选？"),
            ("potty", "孩子{age}，正在戒尿不湿，{garment}怎么选方便他自己脱？"),
            ("walking", "宝宝{age}，刚开始学走路，老摔跤，穿什么样的{garment}比较合适？"),
            ("active", "儿子{age}，特别好动，上蹿下跳的，衣服老是开线，{garment}有结实点的吗？"),
            ("active", "孩子{age}，每天在外面跑跑跳跳一身汗，{garment}选什么面料的好？"),
        ],
        "heldout": [
            ("crawl", "娃{age}，在地垫上爬得可欢了，膝盖那儿老磨出毛球，您推荐哪种{garment}？"),
            ("potty", "{age}的宝宝在练习自己上厕所，来不及脱裤子老尿湿，{garment}有什么讲究？"),
            ("walking", "小家伙{age}，走路还不稳当，摇摇晃晃的，{garment}选哪种不绊脚？"),
            ("potty", "家里小朋友{age}，白天已经不穿纸尿裤了，{garment}哪种款式他自己脱得下来？"),
            ("active", "我家{age}的孩子一刻都停不下来，爬上爬下，衣服缝线老崩开，{garment}怎么挑？"),
        ],
    },
    "season": {
        "train": [
            ("layering", "现在{temp}左右，{age}的宝宝出门，{garment}里面要穿几件？"),
            ("layering", "这几天气温{temp}，给{age}的孩子穿{garment}会不会热？里面怎么搭？"),
            ("duration", "{season}买的{garment}，孩子{age}，身高{height}，能穿到明年吗？"),
            ("travel", "寒假带{age}的孩子去{dest}玩，要带哪些衣服？"),
            ("travel", "过年打算带孩子去{dest}，孩子{age}，行李箱里的衣服怎么准备？"),
        ],
        "heldout": [
            ("layering", "外面{temp}，要带{age}的娃出门遛弯，{garment}里头配什么衣服好？"),
            ("duration", "趁{season}打折想囤件{garment}，孩子{age}、身高{height}，买了能穿几个季度？"),
            ("travel", "计划带{age}的宝宝元旦飞{dest}，那边和家里温差大，备什么衣服？"),
        ],
    },
    "taste": {
        "train": [
            ("character", "孩子{age}，特别迷{character}，非要{character}图案的衣服，{garment}有这样的吗？"),
            ("character", "{age}的儿子天天念叨{character}，想给他买件带{character}的{garment}，怎么选？"),
            ("colour", "女儿{age}，最近只肯穿{colour}的衣服，别的颜色一穿就哭，怎么办？"),
            ("shy", "宝宝{age}，下个月上幼儿园，性格比较内向，第一天穿什么好？"),
            ("noise", "{age}的宝宝对声音特别敏感，衣服上有铃铛或者沙沙响的装饰会不会吓到他？"),
        ],
        "heldout": [
            ("character", "儿子{age}，对{character}着了迷，{garment}能不能帮忙挑带{character}的？颜色最好是{colour}。"),
            ("colour", "孩子{age}，认准了{colour}，别的颜色碰都不碰，这种情况要不要管？"),
            ("shy", "孩子{age}，怕生，马上要入园了，想让他穿得自在点，有什么建议？"),
            ("noise", "小宝{age}，一听到窸窸窣窣的声音就惊醒，{garment}上的亮片、响纸这些要避开吗？"),
        ],
    },
}

# Which children and garments fit a sub-kind: age range in months, garment kinds, garment tags.
ALL_KINDS = ("outer", "top", "bottom", "onepiece", "sleep")
SUB_RULES = {
    "size": {"basic": ((0, 144), ALL_KINDS, ()), "brand": ((12, 144), ALL_KINDS, ()),
             "peer": ((24, 120), ALL_KINDS, ()), "twins": ((0, 144), ALL_KINDS, ())},
    "safety": {"button": ((0, 30), ALL_KINDS, ()), "drawstring": ((12, 144), ALL_KINDS, ()),
               "chemistry": ((0, 144), ALL_KINDS, ()), "skin": ((0, 144), ALL_KINDS, ()),
               "standard": ((0, 144), ALL_KINDS, ())},
    "habits": {"crawl": ((6, 14), ("bottom", "onepiece"), ()),
               "walking": ((9, 20), ("bottom", "onepiece"), ()),
               "potty": ((18, 42), ("bottom",), ("elastic",)),
               "active": ((36, 144), ("top", "bottom"), ())},
    "season": {"layering": ((9, 144), ("outer", "top"), ("layer",)),
               "duration": ((0, 144), ALL_KINDS, ()), "travel": ((12, 144), ALL_KINDS, ())},
    "taste": {"character": ((24, 144), ("top", "outer", "sleep", "onepiece"), ()),
              "colour": ((24, 144), ALL_KINDS, ()), "shy": ((24, 54), ALL_KINDS, ()),
              "noise": ((0, 18), ("top", "bottom", "onepiece", "sleep"), ())},
}

# ---- slot values ----------------------------------------------------------------------------
# A child: (age as the parent writes it, age in months, height cm, weight 斤); typical for the age.
PROFILES = {
    "train": [
        ("4个月", 4, 63, 14), ("7个月", 7, 68, 17), ("9个月", 9, 71, 18), ("11个月", 11, 74, 19),
        ("1岁2个月", 14, 78, 21), ("1岁半", 18, 82, 23), ("两岁", 24, 87, 25), ("三岁", 36, 95, 28),
        ("四岁", 48, 102, 32), ("五岁", 60, 109, 36), ("六岁", 72, 116, 42), ("七岁", 84, 122, 47),
        ("八岁", 96, 128, 53), ("九岁", 108, 134, 58),
    ],
    "heldout": [
        ("5个月", 5, 66, 15), ("10个月", 10, 72, 20), ("13个月", 13, 77, 22), ("两岁半", 30, 92, 27),
        ("16个月", 16, 80, 24), ("三岁半", 42, 99, 30), ("四岁半", 54, 106, 34),
        ("五岁半", 66, 113, 39), ("八岁半", 102, 131, 55),
    ],
}
# Twins of one height and different weights: (age, months, height, lighter 斤, heavier 斤).
TWINS = {
    "train": [("两岁", 24, 86, 23, 29), ("四岁", 48, 103, 31, 38), ("七岁", 84, 121, 44, 52)],
    "heldout": [("两岁半", 30, 91, 26, 33), ("五岁半", 66, 112, 37, 45)],
}
ALL_SEASONS = ("spring", "summer", "autumn", "winter")
# (name, kind, tags, seasons it is worn in, oldest child in months it suits)
GARMENTS = {
    "train": [
        ("羽绒服", "outer", ("hood_cord", "layer"), ("winter",), 144),
        ("棉服", "outer", ("buttons", "layer"), ("autumn", "winter"), 144),
        ("卫衣", "top", ("hood_cord", "layer"), ("spring", "autumn"), 144),
        ("T恤", "top", (), ("spring", "summer"), 144),
        ("牛仔裤", "bottom", ("buttons",), ("spring", "autumn", "winter"), 144),
        ("运动裤", "bottom", ("waist_cord", "elastic"), ALL_SEASONS, 144),
        ("哈伦裤", "bottom", ("elastic",), ("spring", "summer", "autumn"), 144),
        ("背带裤", "bottom", ("buttons",), ("spring", "autumn"), 144),
        ("连体衣", "onepiece", ("buttons",), ALL_SEASONS, 36),
        ("睡衣", "sleep", ("buttons",), ALL_SEASONS, 144),
    ],
    "heldout": [
        ("冲锋衣", "outer", ("hood_cord", "waist_cord", "layer"), ("autumn", "winter"), 144),
        ("毛衣开衫", "top", ("buttons", "layer"), ("spring", "autumn"), 144),
        ("灯芯绒裤", "bottom", ("elastic", "waist_cord"), ("autumn", "winter"), 144),
        ("哈衣", "onepiece", ("buttons",), ALL_SEASONS, 24),
        ("防晒衣", "top", ("hood_cord",), ("summer",), 144),
        ("束脚裤", "bottom", ("elastic",), ALL_SEASONS, 144),
        ("爬爬服", "onepiece", ("buttons",), ALL_SEASONS, 18),
    ],
}
SEASONS = {
    "train": [("winter", "冬天"), ("winter", "入冬以后"), ("summer", "夏天"), ("summer", "大夏天"),
              ("spring", "春天"), ("autumn", "秋天")],
    "heldout": [("winter", "三九天"), ("summer", "三伏天"), ("spring", "开春"), ("autumn", "入秋")],
}
# (°C, band); the band picks the layering advice and the season a garment must suit
TEMPS = {
    "train": [(-8, "cold"), (2, "cold"), (6, "cool"), (10, "cool"), (15, "mild"), (19, "mild")],
    "heldout": [(-3, "cold"), (13, "cool"), (17, "mild")],
}
BAND_SEASON = {"cold": "winter", "cool": "autumn", "mild": "spring"}
DESTINATIONS = {
    "train": [("哈尔滨", "cold"), ("呼伦贝尔", "cold"), ("三亚", "warm"), ("西双版纳", "warm")],
    "heldout": [("长白山", "cold"), ("漠河", "cold"), ("海口", "warm"), ("湛江", "warm")],
}
BRANDS = {"train": ["棉小熊", "森林兔", "小橡果", "暖阳童装"], "heldout": ["云朵宝贝", "小海豚"]}
FITS = {
    "train": [("snug", "已经有点紧了"), ("fit", "穿着刚刚好"), ("loose", "还稍微偏大")],
    "heldout": [("snug", "袖口短了一截"), ("fit", "穿着正合身")],
}
PEERS = {
    "train": [("tall", "比同龄孩子高一些"), ("short", "比同龄孩子矮一点")],
    "heldout": [("tall", "在班里算个子高的"), ("short", "个头在班上偏小")],
}
CHARACTERS = {"train": ["恐龙", "小熊", "独角兽", "挖掘机", "小兔子", "火箭"],
              "heldout": ["鲸鱼", "长颈鹿", "消防车"]}
COLOURS = {"train": ["粉色", "蓝色", "黄色", "紫色"], "heldout": ["绿色", "橙色"]}
