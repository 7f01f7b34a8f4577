"""Answer templates, as data: the parts of a good answer (the rubric's service flow) and the
judge's prompt (poor answers are in poor.py). Every list has "train" and "heldout" halves worded
differently, so the held-out reference answers are not the training answers with new slot values.

A good answer is: [opening, confirm,] core, safety, next step[, closing] (the bracketed parts only
in the long form). Slots beyond the question's own ({age}, {garment}, ...): {size} {size2} {cur}
{wrong} (size labels), {growth} (cm a year), {duration}, {est} {adj} (estimated heights), {summary}
(what the parent told us), the notes below, and the shared vocabulary: {std} {cls} {cls_rule}.
The held-out check (check.py) looks at the fixed text between slots, so the shared vocabulary and
the computed values are not counted as wording.
"""

from __future__ import annotations

STANDARD = "GB 31701-2015"
CLASS_RULES = {  # safety class → (class, the rule that applies); vocabulary, shared by both halves
    "A": ("A类", "36个月以内婴幼儿穿的衣服必须达到A类"),
    "B": ("B类", "直接接触皮肤的童装至少要达到B类"),
    "outer": ("B类", "外穿的衣服国标最低是C类，选B类更放心"),
}

OPENINGS = {  # flag: warm
    "train": ["您好，很高兴为您服务！", "亲，您好～", "您好，感谢您说得这么详细！", "您好，这个问题问得很细心。"],
    "heldout": ["您好呀，谢谢您信任我们！", "您好，看得出您对宝宝特别上心。"],
}
CONFIRMS = {  # flag: clarify
    "train": ["您说的情况我记下了：{summary}。", "先跟您确认一下：{summary}，对吧？"],
    "heldout": ["我把您提供的信息理一下——{summary}。"],
}
CLOSINGS = {  # flag: warm
    "train": ["有什么不清楚的随时问我，祝宝宝穿得舒服、玩得开心！", "希望这些对您有帮助，祝宝宝健康成长～",
              "不着急，您慢慢看，有问题我都在。"],
    "heldout": ["带娃辛苦啦，有需要随时来找我聊。", "愿小朋友每天都舒舒服服、开开心心。"],
}

# Derived notes: NOTES[name][key][half]
NOTES = {
    "margin": {
        "outer": {"train": "里面还能加一件毛衣", "heldout": "里头套厚毛衣也不紧"},
        "other": {"train": "留出了长个子的余量", "heldout": "刚好预留了生长空间"},
    },
    "weight": {
        "ok": {"train": "体重{weight}在正常范围，按身高选就行。",
               "heldout": "{weight}的体重和身高很匹配，不用额外放大。"},
        "heavy": {"train": "体重{weight}稍微偏壮，所以往上提了一码，胸围腰围穿着不勒。",
                  "heldout": "考虑到{weight}的体重偏沉一些，按大一号来，肚子那里不会紧绷。"},
    },
    "fit": {
        "snug": {"train": "说明已经到上限了，该换大一号。", "heldout": "这就是该升码的信号。"},
        "fit": {"train": "说明现在正合适，不过孩子还在长，要留点余量。",
                "heldout": "不过接下来几个月还会长个子，得留点余地。"},
        "loose": {"train": "说明那家版型偏大，我们家按身高选就好。", "heldout": "那家做得偏宽松，我们按身高来。"},
    },
    "layers": {
        "cold": {"train": "贴身一件纯棉长袖打底，中间加一件薄抓绒或羊毛衫，最外面穿{garment}",
                 "heldout": "里层纯棉贴身衣，中层保暖的毛衣或摇粒绒，外层用{garment}挡风"},
        "cool": {"train": "里面一件长袖棉T，外面套{garment}，早晚凉的时候再加件薄马甲",
                 "heldout": "棉质长袖打底，外面是{garment}，早晚温差大就加条小围巾"},
        "mild": {"train": "一件长袖打底，外面搭{garment}，中午热了可以脱掉外层",
                 "heldout": "薄长袖打底、套上{garment}，觉得热了随时脱掉"},
    },
    "climate": {
        "cold": {"train": "冬天室外常在零下，风也大", "heldout": "这个季节天寒地冻"},
        "warm": {"train": "冬天也很暖和，紫外线强", "heldout": "冬天依旧温暖，太阳也晒"},
    },
    "pack": {
        "cold": {"train": "长款羽绒服，帽子、手套、围巾都带上，里面穿保暖内衣加抓绒",
                 "heldout": "过膝的厚外套、护耳帽和连指手套，里层选羊毛或摇粒绒"},
        "warm": {"train": "纯棉短袖短裤，一两件防蚊的薄长袖，再加一顶遮阳帽",
                 "heldout": "透气的短袖和七分裤，轻薄长袖长裤防晒防蚊，外加一顶宽檐帽"},
    },
}

# The advice itself, with its reason: CORES[category][sub][half]; flags: concrete, reason (+ below)
CORES = {
    "size": {
        "basic": {
            "train": [
                "建议选{size}码。{age}的孩子一年大约长{growth}厘米，身高{height}穿{size}码，{margin}，"
                "活动起来不受拘束，大约能穿{duration}。{weight_note}",
                "按身高{height}来看，{garment}拿{size}码最合适：这个阶段一年还会长{growth}厘米左右，"
                "{size}码{margin}，能穿{duration}，中途不用急着换。{weight_note}",
            ],
            "heldout": [
                "我的建议是{size}码。理由有两点：一是{age}的小朋友每年要长高约{growth}厘米，{height}的个头"
                "选这一码，{margin}；二是这样穿{duration}都合身。{weight_note}",
            ],
        },
        "brand": {
            "train": [
                "各家版型有差别，以身高为准更靠谱。宝宝{height}，现在穿{brand}的{cur}码{fit}，{fit_note}"
                "我们家的{garment}建议拿{size}码，{margin}，大约能穿{duration}。",
                "建议您选{size}码。{brand}{cur}码{fit}，{fit_note}再加上{age}这个年龄一年还要长{growth}厘米"
                "左右，{size}码{margin}，能穿{duration}。",
            ],
            "heldout": [
                "我们家的尺码按身高标注，宝宝{height}，推荐{size}码。您提到{brand}的{cur}码{fit}，"
                "{fit_note}这一码{margin}，穿{duration}没问题。",
            ],
        },
        "peer": {
            "train": [
                "{age}的孩子平均身高在{est}厘米左右，宝宝{peer}，估计在{adj}厘米上下，{garment}建议选{size}码，"
                "{margin}，能穿{duration}。不过每个孩子差别不小，最好量一下实际身高再确认。",
                "没量身高的话，我先按年龄帮您估：{age}一般在{est}厘米上下，宝宝{peer}，就按{adj}厘米算，"
                "{garment}选{size}码比较稳妥。这个年龄一年长{growth}厘米左右，这一码能穿{duration}。",
            ],
            "heldout": [
                "可以先粗略估一下：同龄孩子多在{est}厘米前后，宝宝{peer}，大致是{adj}厘米，那就拿{size}码。"
                "{age}一年还要长{growth}厘米左右，这一码{margin}。",
            ],
        },
        "twins": {
            "train": [
                "两个孩子身高一样、体重差得比较多，建议分开选：{weight}的那个按身高拿{size}码；{weight2}的"
                "那个偏壮，胸围和腰围要宽松些，拿{size2}码。{age}的孩子一年长{growth}厘米左右，这样两个人"
                "都能穿{duration}。",
                "双胞胎不一定要买同一个码。身高{height}，按身高{size}码就合适，{margin}；体重{weight2}的孩子"
                "穿{size}码肚子和大腿会紧，建议升到{size2}码。",
            ],
            "heldout": [
                "体型不同就按各自的情况来：轻一点的（{weight}）拿{size}码，重一点的（{weight2}）拿{size2}码。"
                "身高{height}穿{size}码，{margin}；偏壮的孩子多一码，腰腹不勒、活动自如。",
            ],
        },
    },
    "safety": {
        "button": {
            "train": [
                "宝宝{age}正是长牙、啃咬东西的阶段，这个担心很有必要。我们的{garment}用的是和布料压合在一起"
                "的按扣，出厂做过拉力测试，不容易被咬掉；平时还是建议每次洗完检查一下扣子有没有松动，"
                "发现松了先别给宝宝穿，以免误吞。",
                "这个阶段的宝宝什么都往嘴里放，纽扣、亮片这类小部件确实要格外当心。{garment}建议选按扣或者"
                "暗扣的款式，避开装饰性的小纽扣和珠片；穿之前用手拽一拽扣子，确认牢固再穿。",
            ],
            "heldout": [
                "口欲期孩子啃衣服很常见，关键是别让小零件脱落。这件{garment}的扣子是金属四合扣，和面料铆在"
                "一起，比缝上去的纽扣牢固得多；日常留意一下扣子周围的布有没有磨薄，有松动就及时停穿。",
            ],
        },
        "drawstring": {
            "train": [
                "抽绳是童装里容易被忽视的风险：玩滑梯、上下车时，绳子可能被夹住或勾住。{std}要求7岁以下"
                "孩子衣服的头颈部位不能有绳带，所以建议把{garment}帽子上的抽绳直接抽掉，不影响穿着；"
                "大一点的孩子也尽量选没有外露绳头的款式。",
                "腰部和帽子上的绳子都要留心，太长的绳带可能勾住游乐设施。{garment}如果带绳子，最好选两端"
                "固定在衣服上、不能整根抽出的款式，外露部分越短越好；孩子玩滑梯、荡秋千前，把绳子系好"
                "塞进衣服里。",
            ],
            "heldout": [
                "腰间的绳子主要怕两种情况：一是被门缝、扶梯卷住，二是孩子拉出来绕在身上。这件{garment}的"
                "腰绳两头缝合固定，抽不出来，长度也控制得比较短；穿的时候系好、把绳头掖进衣服里，就更稳妥了。",
            ],
        },
        "chemistry": {
            "train": [
                "新衣服建议先用清水过一遍再穿，可以去掉表面的浮色和残留的整理剂。我们这款{garment}的甲醛"
                "含量和pH值都按标准检测过，洗一遍之后给宝宝穿更安心；如果闻到明显的刺鼻气味，先别穿，"
                "直接告诉我给您处理。",
                "甲醛和pH值是童装检测的重点：婴幼儿衣物的甲醛含量要求不超过20mg/kg，pH值要接近中性。收到"
                "{garment}后先拆吊牌，清水洗一遍、通风晾干再穿，颜色鲜艳的单独洗，第一次穿时留意宝宝皮肤"
                "有没有发红。",
            ],
            "heldout": [
                "您的顾虑很常见。正规童装对甲醛和酸碱度都有硬性指标，A类衣物甲醛不得高于20mg/kg，酸碱度"
                "控制在4.0到7.5之间。这件{garment}有检测报告，为了稳妥，到手后还是先清洗晾晒一次再给宝宝穿。",
            ],
        },
        "skin": {
            "train": [
                "皮肤敏感的宝宝，贴身衣物优先选纯棉或者精梳棉这类柔软透气的面料，避免化纤和粗糙的毛料直接"
                "接触皮肤；领口、袖口的缝线和吊牌要朝外或者剪掉，减少摩擦。{garment}建议选浅色、少印花的"
                "款式，染料和印花胶浆相对少一些。如果红疹反复，最好带宝宝去看看医生。",
                "敏感肌的孩子穿衣有几个要点：面料选纯棉，透气吸汗；出汗后及时换下，别让湿衣服捂着；新衣服"
                "先洗再穿。我们这件{garment}是纯棉平纹的，手感软，没有大面积印花，比较适合宝宝。如果红疹"
                "反复出现，建议带宝宝去皮肤科看看。",
            ],
            "heldout": [
                "特应性皮炎体质的孩子，衣服要以不刺激为第一原则：贴身选纯棉或莫代尔，缝线平整、标签外置，"
                "避免羊毛直接贴肤；洗衣用温和的无香型洗涤剂，多漂洗一遍。挑{garment}也按这个思路来。"
                "衣服只能减少刺激，不能替代治疗，皮肤问题还是要遵医嘱护理。",
            ],
        },
        "standard": {  # names the standard itself: flag standard, no separate safety sentence
            "train": [
                "{std}把童装分成A、B、C三类：A类要求最高，用于36个月以内的婴幼儿；B类用于直接接触皮肤的"
                "衣服；C类用于不直接接触皮肤的外衣。孩子{age}，{cls_rule}，我们这件{garment}符合{cls}，"
                "吊牌上有标注。",
                "买童装看吊牌上的“安全技术类别”就行。孩子{age}，按国标，{cls_rule}。这件{garment}标的是"
                "{cls}，同时符合{std}对甲醛、pH值、绳带和附件的各项要求。",
            ],
            "heldout": [
                "吊牌上的字母是{std}规定的安全技术类别，其中A类最严格，C类最宽松。宝宝{age}，{cls_rule}，"
                "这件{garment}属于{cls}，达到了要求。国标对纽扣、拉链这些小附件的牢度也有规定，日常穿脱时"
                "顺手检查一下更好。",
            ],
        },
    },
    "habits": {
        "crawl": {
            "train": [
                "爬行期的宝宝膝盖磨得厉害，建议选膝盖处加厚或者有双层布的{garment}，面料选紧密的精梳棉或者"
                "棉氨纶，耐磨又有弹性；裤腿不要太长，以免爬的时候踩住。{age}正是爬得最多的时候，多备两三条"
                "换着穿更合适。",
                "宝宝{age}，每天爬很多，{garment}的重点是耐磨和不拖沓：选膝盖有补片加固的款，裤脚收口，"
                "不会卷到膝盖上面；腰部用宽松紧带，趴着的时候肚子不勒。",
            ],
            "heldout": [
                "满地爬的阶段，裤子的膝盖是消耗最快的地方。挑{garment}看三点：膝部有没有加厚拼接，面料是不是"
                "密织的棉，裤口是不是罗纹收边。这样的款式就算天天在地上爬，也不容易起球破洞。",
            ],
        },
        "potty": {
            "train": [
                "戒尿不湿期间，{garment}最重要的是好穿好脱：选全松紧腰、没有纽扣和拉链的款式，孩子自己一拉"
                "就能脱下来；不要选背带款和连体款，来不及的时候特别耽误事。腰头松紧要适中，能伸进两根手指"
                "就好。",
                "{age}的孩子正在学自己上厕所，建议选松紧腰的{garment}，不要有扣子、拉链和背带，让他自己练习"
                "穿脱；面料选吸湿快干的纯棉，多备几条方便换洗。",
            ],
            "heldout": [
                "练习如厕的时候，裤子越简单越好。这件{garment}是整圈松紧腰，没有任何扣件，孩子双手一拉就能"
                "褪下去；腰头不宜太紧，否则孩子拉不动反而着急。另外多准备两三条替换，尿湿了别责备，慢慢来。",
            ],
        },
        "walking": {
            "train": [
                "学走路的宝宝重心不稳，{garment}要合身、不拖地：裤长到脚踝就好，太长容易绊倒；选有弹性的"
                "面料，蹲下站起都方便；膝盖处稍厚一点，摔跤时能缓冲一下。",
                "宝宝{age}刚学步，衣服别太厚重，越轻便越好走。{garment}选裤脚收口、长度刚到脚踝的款式，"
                "别选喇叭裤脚和长裙摆；面料软一点、有弹力，迈步的时候不拉扯。",
            ],
            "heldout": [
                "走路还不稳的时候，最怕裤脚和下摆绊脚。建议{garment}长度刚好盖过脚踝、裤口有罗纹收紧；"
                "面料要柔软有弹性，让小腿迈得开；鞋子也要选防滑软底的，配合起来摔得少。",
            ],
        },
        "active": {
            "train": [
                "好动的孩子衣服主要坏在缝线和膝盖、手肘这些受力点。{garment}建议选双针缝线、关键部位打了"
                "加固的款式，面料选有弹力的棉氨纶，跑跳拉伸时不容易崩线；尺码别买太紧，留点活动空间。",
                "{age}的孩子运动量大、出汗多，{garment}选透气吸汗的纯棉或者速干面料，缝线做了包边加固的"
                "更耐穿；颜色可以选耐脏的深色系，洗起来省心。",
            ],
            "heldout": [
                "活泼的孩子爬上爬下，衣服要经得起拉扯。挑{garment}时翻到里面看看接缝，包缝密、走线直的更结实；"
                "裆部和腋下最好有加固，弹力面料比纯棉更不容易撑开。",
            ],
        },
    },
    "season": {
        "layering": {
            "train": [
                "{temp}的天气，建议这样穿：{layers}。小孩子新陈代谢快，比大人怕热，别穿太多，出汗后吹风"
                "反而容易着凉。",
                "按{temp}来搭：{layers}。判断穿得合不合适，摸宝宝的后背，温热干爽就刚好，出汗了就减一件。",
            ],
            "heldout": [
                "室外{temp}的话，可以参考：{layers}。孩子跑动起来产热多，宁可包里多带一件备用，也别一下子"
                "裹得太厚。",
            ],
        },
        "duration": {
            "train": [
                "{season}买{garment}，想多穿一阵的话建议选{size}码：{age}的孩子一年大约长{growth}厘米，"
                "身高{height}穿{size}码，{margin}，能穿{duration}。不建议一下子买大两码，袖子盖住手、裤腿拖地"
                "反而不安全。",
                "能不能穿到明年主要看尺码留的余量。宝宝{height}，{garment}选{size}码，按每年长{growth}厘米"
                "左右算，能穿{duration}；要是选刚好合身的码，下个季节多半就短了。",
            ],
            "heldout": [
                "囤货可以，但别囤太大。身高{height}的孩子拿{size}码，{margin}，差不多能穿{duration}；{age}的"
                "小朋友一年长{growth}厘米上下，大两码的衣服垮垮的，走路玩耍都不方便。",
            ],
        },
        "travel": {
            "train": [
                "{dest}{climate}，给{age}的孩子准备衣服可以这样带：{pack}。衣服按“洋葱式”分层穿，进出室内"
                "方便增减；另外多带两三套贴身衣物，弄脏或出汗了随时换。",
                "去{dest}建议这样带：{pack}。飞机、高铁里的温度和室外差得多，随身包里放一件薄外套；孩子"
                "{age}，换洗衣服按每天一到两套准备。",
            ],
            "heldout": [
                "两地温差大，关键是能灵活增减。{dest}{climate}，行李里备好：{pack}；出发当天穿一身方便穿脱"
                "的，到了再按当地温度调整。",
            ],
        },
    },
    "taste": {
        "character": {
            "train": [
                "孩子有自己喜欢的图案是好事，穿着喜欢的衣服会更愿意自己穿脱。我们家有{character}图案的"
                "{garment}，图案印在外面，里面平整不磨皮肤；建议选水性印花、面积不太大的款式，透气性更好。",
                "{age}的孩子开始有自己的主意了，尊重他的喜好，穿衣会顺利很多。{character}图案的{garment}"
                "我们有几款，优先推荐刺绣或者小面积印花的，贴身更柔软；大面积胶印不透气，天热穿容易闷。",
            ],
            "heldout": [
                "顺着孩子的兴趣选，穿衣就不用哄了。带{character}的{garment}挑图案在胸前、手感软的那种，别选"
                "有立体装饰、小配件的，{age}的孩子容易抠下来。颜色选{colour}完全没问题，让他自己参与挑选，"
                "他会更爱穿。",
            ],
        },
        "colour": {
            "train": [
                "这个年龄的孩子对颜色有偏好很正常，是自主意识在发展，不用强行纠正。可以多准备几件{colour}的"
                "基础款轮换穿，再慢慢引导：比如让她在两件衣服里自己选一件，或者在{colour}上衣里配一条别的"
                "颜色的裤子。",
                "只肯穿{colour}说明孩子开始有自己的审美了，是好事。我的建议是顺着来：{colour}的衣服多备几件，"
                "款式和面料可以换着来；想引导她接受别的颜色，可以选带{colour}图案的拼色款，慢慢过渡。",
            ],
            "heldout": [
                "认准一种颜色是幼儿常见的阶段，过一阵往往会自己变。先满足孩子，{colour}的衣服备上几件；平时"
                "可以让孩子在两个颜色之间二选一，给他选择权但不强迫，通常慢慢就能接受更多颜色。",
            ],
        },
        "shy": {
            "train": [
                "第一天上幼儿园，穿得舒服、熟悉最重要：建议穿他平时常穿、自己喜欢的衣服，熟悉的感觉能给孩子"
                "安全感；款式选套头或者松紧腰，方便自己穿脱、上厕所，少求助老师也能少一分紧张。还可以在"
                "衣服上缝一个小名字标签，方便老师认。",
                "内向的孩子到新环境容易紧张，衣服上可以帮他减少不确定感：选他最喜欢的颜色或图案，让他自己"
                "挑第一天穿哪件；避开需要别人帮忙的背带、后背扣子，选自己能搞定的款式；书包里再放一套"
                "备用衣物。",
            ],
            "heldout": [
                "怕生的孩子入园，衣服最好是“老朋友”：提前一周就让他穿着新衣服在家玩，熟悉了再穿去幼儿园；"
                "选前开襟、松紧腰这类自己能穿脱的样式，书包里放一套替换衣服，万一弄湿了也不会慌。",
            ],
        },
        "noise": {
            "train": [
                "对声音敏感的宝宝，建议避开带铃铛、响纸、亮片和塑料装饰的衣服，这些在动的时候会发出声音，"
                "容易让宝宝分心或者受惊；小装饰如果脱落还有误吞的风险。选纯色或印花平整的{garment}，"
                "安静又安全。",
            ],
            "heldout": [
                "容易被声音惊醒的小宝，衣物要“安静”：亮片、响纸、挂饰一律避开，它们既会沙沙作响，掉下来"
                "还可能被放进嘴里；{garment}挑表面平整、没有硬挺涂层的款，翻身时几乎没有声响。",
            ],
        },
    },
}
SAFETY_NOTE_SUBS = {("safety", s) for s in CORES["safety"]} | {("taste", "noise")}

SAFETY = {  # flag: standard. "product" when the question names a garment, else "general"
    "product": {
        "train": ["安全方面，这件{garment}符合{std}的{cls}要求，{cls_rule}，甲醛和pH值都在标准范围内。",
                  "面料按{std}的{cls}标准生产（{cls_rule}），您可以放心给孩子穿。"],
        "heldout": ["顺带说一下安全性：这件{garment}执行的是{std}，属于{cls}（{cls_rule}）。"],
    },
    "general": {
        "train": ["挑衣服时记得看吊牌上的安全技术类别：{cls_rule}，这是{std}的要求。",
                  "不管买哪件，都建议确认符合{std}，{cls_rule}。"],
        "heldout": ["选购时留意标签上有没有{std}的标注，{cls_rule}。"],
    },
}

NEXT_STEPS = {  # flag: next_step
    "size": {
        "train": ["下单前您可以对照详情页的尺码表，再量一下宝宝的身高；拿不准的话把数据发给我，我帮您再核对一遍。",
                  "衣服到手先试穿，手臂能上举、蹲下不紧就说明合适，不合适随时找我换码。"],
        "heldout": ["方便的话，用软尺量一下宝宝的身高和胸围发给我，我对照这款的尺码表再帮您确认一次。"],
    },
    "safety": {
        "train": ["收到后可以先看吊牌和洗标，上面标注了执行标准和安全类别；有疑问拍照发我，我帮您看。",
                  "第一次穿之前建议用清水洗一遍，穿上后留意宝宝的皮肤和精神状态，有任何情况随时告诉我。"],
        "heldout": ["如果需要，我可以把这款的检测报告发给您，您对照着看会更安心。"],
    },
    "habits": {
        "train": ["您可以告诉我宝宝现在的身高和腰围，我帮您挑长短和松紧都合适的款。",
                  "建议先买一两件试穿几天，看看方不方便、耐不耐穿，合适再多备几件。"],
        "heldout": ["需要的话我挑两三款符合这些要求的发给您，您比较一下再决定。"],
    },
    "season": {
        "train": ["出门前摸摸宝宝的后颈，温热不出汗就说明穿得刚好；需要的话我按这个思路给您配一套。",
                  "您告诉我宝宝平时怕冷还是怕热，我再帮您把搭配调一调。"],
        "heldout": ["我可以按上面的思路帮您列一份穿衣清单，您照着准备就行。"],
    },
    "taste": {
        "train": ["您可以告诉我宝宝平时喜欢的颜色和图案，我从店里挑几款发给您看看。",
                  "可以先让宝宝在家试穿一两天，熟悉了再穿出门，有需要随时跟我说。"],
        "heldout": ["我把几款合适的款式图发您，您挑好了告诉我，我再帮您核对尺码。"],
    },
}

JUDGE_PROMPT = (
    "你是童装店的客服质检员。请从五个维度给下面的客服回答打分，每项1到10分：儿童友好性（child_friendly）、"
    "安全合规性（safety）、专业准确性（accuracy）、服务完整性（service）、禁词合规（compliance），"
    "再判断回答是否合格（is_good），用一句话说明理由（reason）。只输出一行JSON："
    '{{"scores": {{"child_friendly": 分数, "safety": 分数, "accuracy": 分数, "service": 分数, '
    '"compliance": 分数}}, "is_good": true或false, "reason": "理由"}}\n\n'
    "【家长问题】\n{question}\n【问题结束】\n\n【客服回答】\n{answer}\n【回答结束】"
)
REASONS = {  # flag → phrase, in the order they are listed
    "concrete": "给出了具体建议", "reason": "讲清了理由", "standard": "点明了GB 31701-2015安全类别",
    "safety_note": "提醒了具体的安全细节", "clarify": "先确认了家长给的信息", "next_step": "给出了下一步",
    "warm": "语气亲切",
    "generic": "回答笼统，没有针对孩子的具体情况", "dismissive": "语气敷衍", "deflect": "把问题推给别人",
    "pushy": "催促下单、强行推销", "exaggerated": "有夸大或绝对化的承诺", "medical": "宣称医疗功效，属于禁用说法",
    "wrong_size": "尺码建议没有依据", "no_standard": "没有提安全标准", "no_next_step": "没有下一步建议",
}
