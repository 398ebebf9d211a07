"""The words the claim rules look for, in English and Traditional Chinese (with the common
Simplified spellings students also type). Plain data only: the rules live in extract.py.

Matching conventions (applied by extract.py):
- A term with Latin letters matches case-insensitively as whole words; a space in a term matches
  any run of whitespace.
- A Chinese term matches anywhere as a substring, so a short term that is part of an everyday
  word is either left out or listed in a *_FALSE_FRIENDS table, which is blanked out first.
- At one position the longest term wins ("眼睛" over "眼", "最不容易辨識" over "最容易辨識").
- A term listed under several keys stands for all of them ("橫線" is horizontal and lines).
"""

from grader.classes import class_index

# ---------------------------------------------------------------- classes (keys: labels 0..6)

CLASS_TERMS: dict[int, tuple[str, ...]] = {
    # Angry: noun and adjective; 生氣 is the grader's own name, 憤怒 the other usual one.
    class_index("Angry"): ("angry", "anger", "angrily", "生氣", "憤怒", "生气", "愤怒", "發怒"),
    # Disgust: 厭惡 is the grader's name; students also write 噁心 (disgusting).
    class_index("Disgust"): (
        "disgust", "disgusted", "disgusting", "厭惡", "噁心", "厌恶", "恶心", "嫌惡",
    ),
    # Fear: "scared"/"afraid" are how students describe the faces; 驚恐 is fear, not surprise.
    class_index("Fear"): (
        "fear", "fearful", "scared", "afraid", "frightened", "恐懼", "害怕", "恐惧", "驚恐", "惊恐",
    ),
    # Happy: the noun and adjective; 高興 (grader's name), 開心, 快樂.
    class_index("Happy"): (
        "happy", "happiness", "joy", "高興", "開心", "快樂", "高兴", "开心", "快乐", "喜悅",
    ),
    # Sad: 難過 (grader's name), 悲傷, 傷心.
    class_index("Sad"): ("sad", "sadness", "難過", "悲傷", "傷心", "难过", "悲伤", "伤心"),
    # Surprise: whole words only, so "surprisingly" (= unexpectedly) is not the class.
    class_index("Surprise"): (
        "surprise", "surprised", "驚訝", "驚喜", "吃驚", "驚奇", "惊讶", "惊喜", "吃惊",
    ),
    # Neutral: 中立 (grader's name), 中性, 平靜, 無表情.
    class_index("Neutral"): (
        "neutral", "中立", "中性", "平靜", "無表情", "面無表情", "平静", "无表情", "面无表情",
    ),
}

# ---------------------------------------------------------------- face parts (canonical English)

PART_TERMS: dict[str, tuple[str, ...]] = {
    # Eyes; bare 眼 also covers 眼部, 眼角, 雙眼.
    "eyes": ("eyes", "eye", "eye region", "眼睛", "眼部", "眼角", "眼"),
    # Eyebrows; bare 眉 covers 眉頭, 眉心.
    "brows": ("eyebrows", "eyebrow", "brows", "brow", "眉毛", "眉頭", "眉头", "眉"),
    # Nose.
    "nose": ("nose", "nostrils", "nostril", "鼻子", "鼻頭", "鼻"),
    # Mouth, with lips and teeth (a smile or an open mouth is read from them); 嘴角 = mouth corners.
    "mouth": (
        "mouth", "lips", "lip", "teeth", "smile", "smiles", "grin", "嘴巴", "嘴角", "嘴唇", "嘴", "唇", "牙齒", "牙齿", "牙",
    ),
    # Forehead; not bare 額 (額外 = extra).
    "forehead": ("forehead", "額頭", "额头", "前額"),
    # Cheeks; not bare 頰 alone to stay with the usual words.
    "cheeks": ("cheeks", "cheek", "臉頰", "脸颊", "兩頰", "面頰"),
    # Chin and jaw.
    "chin": ("chin", "jaw", "jawline", "下巴", "下顎"),
    # Hair, including the fringe students point at on FER2013 faces.
    "hair": ("hair", "hairline", "bangs", "fringe", "頭髮", "头发", "瀏海", "髮", "发型"),
    # Everything outside the face.
    "background": ("background", "backgrounds", "背景"),
    # The face as a whole ("inside the face"); specific parts take over when both are named.
    "face": (
        "face", "faces", "inside the face", "臉", "臉部", "面部", "人臉", "臉孔", "脸", "脸部", "人脸",
    ),
}

# A word that names a set of parts stands for every part in it: 五官 ("the five sense organs")
# is how Chinese students say "the facial features" = eyes, brows, nose and mouth.
PART_SET_TERMS: dict[str, tuple[str, ...]] = {
    "五官": ("brows", "eyes", "mouth", "nose"),
    "facial features": ("brows", "eyes", "mouth", "nose"),
    "facial feature": ("brows", "eyes", "mouth", "nose"),
}

# Phrases that contain a part word but name no part: blanked before parts are looked for.
PART_FALSE_FRIENDS: tuple[str, ...] = (
    "facial expression", "facial expressions", "face recognition", "faces dataset",
    "臉部表情", "人臉表情", "人臉辨識", "臉部辨識", "脸部表情", "人脸表情", "人脸识别",
    "眼中", "眼光", "一眼", "字眼",  # figurative 眼: "in my view", "at a glance", "wording"
)

# ---------------------------------------------------------------- filter patterns (Q2)

PATTERN_TERMS: dict[str, tuple[str, ...]] = {
    # Horizontal strokes; 橫線/橫條 are horizontal lines (also listed under "lines").
    "horizontal": ("horizontal", "水平", "橫向", "橫線", "橫條", "橫的", "横向", "横线", "横条"),
    # Vertical strokes; not 直線 (= straight line, any direction).
    "vertical": (
        "vertical", "垂直", "縱向", "直向", "豎直", "豎線", "直條", "直的", "纵向", "竖直", "竖线",
    ),
    # Diagonal / oblique strokes.
    "diagonal": (
        "diagonal", "diagonals", "oblique", "slanted", "斜線", "斜向", "斜的", "對角", "斜",
        "斜线", "对角",
    ),
    # Line-like patterns in general: lines, edges, stripes, strokes.
    "lines": (
        "line", "lines", "edge", "edges", "stripe", "stripes", "striped", "stroke", "strokes",
        "bars", "gabor", "線條", "線", "邊緣", "條紋", "輪廓", "橫線", "橫條", "豎線", "斜線", "直線",
        "线条", "线", "边缘", "条纹", "轮廓", "横线", "横条", "竖线", "斜线", "直线",
    ),
    # Point-like patterns; not bare 點 (重點, 特點, 一點 are everyday words).
    "spots": (
        "spot", "spots", "dot", "dots", "blob", "blobs", "斑點", "圓點", "點狀", "亮點", "小點",
        "斑点", "圆点", "点状", "亮点", "小点",
    ),
    # Colour, brightness and texture: not a shape at all.
    "color": (
        "color", "colour", "colors", "colours", "brightness", "texture", "textures", "intensity",
        "contrast", "lighting", "顏色", "亮度", "明暗", "紋理", "色塊", "光線", "颜色",
        "纹理", "色块", "光线",
    ),
    # Many orientations at once ("edge detectors of different directions").
    "several_orientations": (
        "several orientations", "different orientations", "various orientations",
        "many orientations", "multiple orientations", "all orientations",
        "different directions", "various directions", "many directions", "all directions",
        "各種方向", "不同方向", "多種方向", "各個方向", "多個方向", "各方向",
        "各种方向", "多种方向", "各个方向", "多个方向",
        # Angles, and the singular that non-native writers use.
        "different orientation", "different angles", "various angles", "many angles", "all angles",
        "各種角度", "不同角度", "多種角度", "各个角度", "各種斜率",
        # Gabor filters are oriented edge detectors at several orientations by definition.
        "gabor",
    ),
}

# A sentence outside Q2 speaks about filters only when it names them (or a layer, a channel).
FILTER_CONTEXT_TERMS: tuple[str, ...] = (
    "filter", "filters", "kernel", "kernels", "first layer", "conv", "convolution",
    "convolutional", "channel", "channels", "feature map", "feature maps", "layer",
    "濾波器", "過濾器", "濾鏡", "卷積核", "卷積", "第一層", "通道", "特徵圖",
    "滤波器", "过滤器", "卷积核", "卷积", "第一层", "特征图",
)

# ---------------------------------------------------------------- negation

NEGATION_TERMS: tuple[str, ...] = (
    # English: plain negators, contractions (both apostrophes are accepted by extract.py),
    # the contrast phrases that exclude what follows, and "ignores" (= does not look at).
    "not", "no", "never", "hardly", "rarely", "seldom", "barely", "without", "neither", "nor",
    "none", "nothing", "cannot", "rather than", "instead of", "as opposed to",
    "doesn't", "don't", "didn't", "isn't", "aren't", "wasn't", "weren't", "can't", "won't",
    "hasn't", "haven't", "shouldn't", "wouldn't",
    "ignore", "ignores", "ignored", "ignoring", "irrelevant", "unimportant",
    # "little"/"zero" as in "gets little attention", "the gradient there is almost zero".
    "little", "zero", "near-zero",
    # Chinese: 不, 沒(有), 並非/不是/而非, 無, and 忽略/忽視 (= ignores).
    "不", "沒有", "沒", "並非", "不是", "並不是", "而非", "而不是", "非", "無", "很少", "忽略",
    "忽視", "没有", "没", "并非", "并不是", "无", "忽视", "為零", "接近零", "趨近於零", "为零", "趋近于零",
)

# Negations that describe the words before them even after a cue: "the gradient on the hair is
# almost zero" excludes the hair, although "gradient" points at it first.
VANISHING_TERMS: tuple[str, ...] = (
    "zero", "near-zero", "為零", "接近零", "趨近於零", "为零", "趋近于零",
    # A map that stays dark on a part says the model does not look there: "the forehead and
    # cheeks are almost dark", "嘴巴反而不太亮", "臉頰跟額頭幾乎是暗的", "下巴跟臉頰：很少被注意到".
    "dark", "almost nothing", "不太亮", "不亮", "暗", "很少被注意", "很少被關注", "很少亮",
)

# Words that contain a negator but do not negate: blanked before negations are looked for.
NEGATION_FALSE_FRIENDS: tuple[str, ...] = (
    "not only", "not just", "no doubt", "no matter", "nothing but", "a little", "little bit",
    "不同", "不錯", "不过", "不過", "不少", "不斷", "不僅", "不只", "不管", "不论", "不論",
    "不断", "不仅", "不错", "非常", "無表情", "无表情", "除非", "是非", "並非常",
)

# ---------------------------------------------------------------- clause breaks

# Where a clause ends inside a sentence: commas and colons (handled in extract.py) and these
# contrast words, after which a negation no longer applies ("not the hair but the eyes").
CONTRAST_TERMS: tuple[str, ...] = (
    "but", "however", "while", "whereas", "although", "though",
    "而是", "但是", "但", "可是", "不過", "然而", "反而", "不过",
)

# A clause opening with one of these affirms again after a negated one: "不是背景，是眼睛",
# "not the hair, it's the eyes".
AFFIRMING_OPENERS: tuple[str, ...] = (
    "是", "而是", "反而是", "it is", "it's", "they are", "rather", "instead",
)

# ---------------------------------------------------------------- attention (where the model looks)

ATTENTION_CUES: tuple[str, ...] = (
    # English verbs of looking and their nouns; "ignore" counts so "ignores the hair" is read.
    "look", "looks", "looking", "looked", "focus", "focuses", "focused", "focusing", "focussed",
    "attend", "attends", "attended", "attending", "attention", "concentrate", "concentrates",
    "concentrated", "concentrating", "rely", "relies", "relied", "relying", "depend", "depends",
    "depended", "highlight", "highlights", "highlighted", "highlighting", "emphasize",
    "emphasizes", "emphasized", "emphasise", "emphasises", "emphasised", "salient", "important",
    "importance", "gradient", "gradients", "brightest", "brighter", "bright", "sensitive",
    "care about", "cares about", "uses", "used", "use", "based on", "saliency", "salience",
    "ignore", "ignores", "ignored", "ignoring",
    # How students say a map's bright pixels sit on a part: "the maps light up the mouth",
    # "LIME marks the eyes", "the heatmap is strongest around the nose".
    "light up", "lights up", "lit up", "lighting up", "marks", "marked", "strongest", "activates",
    "activated", "responds to", "respond to", "bright spots", "亮點", "亮点", "亮起",
    # LIME "marks out" superpixels: 標出, 標示, 框出, 圈出.
    "標出", "標示", "標記", "框出", "圈出", "标出", "标示",
    # Chinese: 看 (with its false friends blanked), 注意, 關注, 重視, 聚焦, 集中, 依賴, 重要,
    # 梯度 (the saliency gradient sits on a part), 落在 (LIME's superpixels fall on a part).
    "看", "注意", "關注", "重視", "聚焦", "集中", "依賴", "著重", "專注", "重要", "梯度", "落在",
    "在意", "敏感", "較亮", "最亮", "高亮", "凸顯", "突顯", "根據", "依據", "忽略", "忽視", "顯著",
    "关注", "重视", "依赖", "着重", "专注", "凸显", "突显", "根据", "依据", "忽视",
)

# Phrases with a cue word that do not say where the model looks.
ATTENTION_FALSE_FRIENDS: tuple[str, ...] = (
    "looks like", "look like", "looked like", "looking like", "looks similar", "look similar",
    "gradient ascent", "gradient descent", "integrated gradients", "integrated gradient",
    "看起來", "看起来", "看到", "看出", "看得出", "看見", "看见", "可以看", "來看", "来看", "看法",
    "好看", "看看", "查看", "梯度上升", "梯度下降", "積分梯度", "积分梯度", "整合梯度", "平滑梯度",
    # 看成 / 看作 / 當成: "mistakes X for Y", not looking.
    "看成", "看作", "當成", "看错", "看錯",
)

# ---------------------------------------------------------------- best / worst class

# Cues that on their own say a class is recognised best ("strongest" is not one: "for Happy the
# gradients are strongest around the smile" says where the map is, not how well Happy does).
BEST_CUES: tuple[str, ...] = (
    "best", "most accurate", "most accurately", "most reliably", "most reliable", "easiest",
    "most easily", "most correctly", "top accuracy",
    "最好", "最佳", "最準", "最準確", "最精準", "最容易辨識", "最容易辨認", "最容易分類",
    "最容易認出", "最容易判斷", "最容易預測", "最容易被辨識", "最容易被認出", "最容易識別",
    "表現最好", "表現最佳", "最准", "最准确", "最容易识别", "表现最好",
)

# Cues that on their own say a class is recognised worst.
WORST_CUES: tuple[str, ...] = (
    "worst", "most worse", "hardest", "most difficult", "least accurate", "least accurately", "poorest",
    "weakest", "most often wrong", "most misclassified", "most often misclassified",
    "struggles most", "struggles the most", "least reliably",
    "最差", "最不好", "最難", "最困難", "最不準", "最不準確", "最糟", "最弱", "表現最差",
    "最不容易辨識", "最不容易辨認", "最不容易分類", "最難辨識", "最容易錯", "最容易出錯",
    "最常出錯", "最难", "最困难", "最不准", "表现最差", "最容易错",
)

# "highest"/"lowest" say best/worst only when the sentence names a score ("highest accuracy").
BEST_IF_METRIC_CUES: tuple[str, ...] = ("highest", "largest", "最高", "最大")
WORST_IF_METRIC_CUES: tuple[str, ...] = ("lowest", "smallest", "最低", "最小")
METRIC_TERMS: tuple[str, ...] = (
    "accuracy", "accuracies", "recall", "precision", "f1", "score", "correct", "true positive",
    "準確率", "準確度", "正確率", "辨識率", "召回率", "精確率", "準確", "正確", "分數",
    "准确率", "准确度", "正确率", "识别率", "召回率", "准确", "正确",
)

# ---------------------------------------------------------------- confusion between classes

# Undirected: "fear and sad are confused" names a pair, not which way the mistake goes.
CONFUSION_CUES: tuple[str, ...] = (
    "confuse", "confuses", "confused", "confusing", "confusion", "confusable", "mix up",
    "mixes up", "mixed up", "confused with", "hard to tell apart", "hard to distinguish",
    "can't tell", "cannot tell", "can't distinguish", "cannot distinguish", "unable to distinguish",
    "fails to distinguish", "difficult to distinguish", "hard to tell",
    "無法區分", "無法分辨", "難以分辨", "分辨不出", "區分不出", "无法区分", "无法分辨", "难以分辨",
    "混淆", "搞混", "弄混", "分不清", "混在一起", "難以區分", "难以区分", "搞錯", "搞错",
)

# Directed, true class before the cue and predicted class after it: "fear is mistaken for sad",
# "常把恐懼誤判為難過", "恐懼常被誤判為難過". Bare 認為 (= "I think") is deliberately absent.
MISTAKE_CUES: tuple[str, ...] = (
    "mistaken for", "mistaken as", "misclassified as", "misclassified into", "misclassified to",
    "mislabeled as", "mislabelled as", "misidentified as", "misread as", "predicted as",
    "classified as", "recognized as", "recognised as", "taken for", "confused for",
    "confused as", "labeled as", "labelled as", "identified as", "predicted to be",
    "classified to be", "taken to be",
    "誤判為", "誤判成", "誤認為", "誤認成", "誤分為", "誤分成", "誤分類為", "誤分類成", "錯分為",
    "錯判為", "錯認為", "錯認成", "判成", "判為", "判斷為", "判斷成", "認成", "當成", "當作",
    "看成", "預測成", "預測為", "辨識為", "辨識成", "識別為", "分類為", "分類成", "分成",
    "误判为", "误判成", "误认为", "误认成", "误分为", "误分类为", "错分为", "判为", "判断为",
    "当成", "当作", "预测成", "预测为", "识别为", "分类为", "分类成",
)

# Directed, verb first: "the model misclassifies fear as sad", "mistakes fear for sad".
MISTAKE_VERB_FIRST_CUES: tuple[str, ...] = (
    "misclassifies", "misclassify", "mistakes", "mistook", "mislabels",
    "misidentifies",
)

# The confusion matrix is not a confusion claim.
CONFUSION_FALSE_FRIENDS: tuple[str, ...] = (
    "confusion matrix", "confusion matrices", "混淆矩陣", "混淆矩阵",
)

# Between two class names in a list ("Fear, Sad and Angry", "難過、生氣與厭惡").
LIST_CONNECTORS: tuple[str, ...] = (
    ",", "，", "、", "and", "or", "&", "/", "和", "與", "与", "及", "以及", "跟", "或",
    "「", "」", "『", "』", '"', "'", "“", "”", "the", "class", "classes", "類", "类",
)

# ---------------------------------------------------------------- explanation methods (Q4)

METHOD_TERMS: dict[str, tuple[str, ...]] = {
    # Grad-CAM in its usual spellings.
    "gradcam": ("grad-cam", "gradcam", "grad cam", "grad-cam++", "gradcam++"),
    # Integrated Gradients and its Chinese names.
    "integrated_gradients": (
        "integrated gradients", "integrated gradient", "integrated-gradients",
        "積分梯度", "积分梯度", "整合梯度",
    ),
    # SmoothGrad.
    "smoothgrad": ("smoothgrad", "smooth grad", "smooth-grad", "平滑梯度"),
    # Class model visualization: gradient ascent from noise toward a class.
    "class_model": (
        "class model visualization", "class model visualisation", "class-model visualization",
        "class visualization", "class visualisation", "class model", "class-model",
        "類別視覺化", "類別模型視覺化", "類別可視化", "类别可视化", "类别视觉化",
    ),
    # Plain saliency maps (vanilla gradients); not bare 顯著 (= "significant").
    "saliency": (
        "saliency", "saliency map", "saliency maps", "vanilla gradient", "vanilla gradients",
        "顯著圖", "顯著性圖", "顯著性地圖", "显著图", "显著性图",
    ),
}
