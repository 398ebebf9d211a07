"""A checked claim (result.json's `claims`) in words, in the report's language: what it claims, the
verdict, and the numbers that decided it. One place for every sink: the PDF's box under each answer,
`grader check`'s lines and the review page (each escapes the text for itself)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from grader.classes import Language, class_names
from grader.result import ClaimResult

PARTS: dict[str, dict[str, str]] = {
    "en": {"eyes": "eyes", "brows": "brows", "nose": "nose", "mouth": "mouth", "forehead": "forehead",
           "cheeks": "cheeks", "chin": "chin", "hair": "hair", "background": "background", "face": "face"},
    "zh-TW": {"eyes": "眼睛", "brows": "眉毛", "nose": "鼻子", "mouth": "嘴巴", "forehead": "額頭", "cheeks": "臉頰",
              "chin": "下巴", "hair": "頭髮", "background": "背景", "face": "臉部"},
}
METHODS: dict[str, dict[str, str]] = {
    "en": {"saliency": "saliency", "smoothgrad": "SmoothGrad", "integrated_gradients": "integrated gradients",
           "gradcam": "Grad-CAM", "lime": "LIME", "class_model": "class model visualization", "filters": "filters"},
    "zh-TW": {"saliency": "顯著圖", "smoothgrad": "SmoothGrad", "integrated_gradients": "積分梯度",
              "gradcam": "Grad-CAM", "lime": "LIME", "class_model": "類別模型視覺化", "filters": "濾波器"},
}
PATTERNS: dict[str, dict[str, str]] = {
    "en": {"horizontal": "horizontal", "vertical": "vertical", "diagonal": "diagonal", "lines": "lines or edges",
           "spots": "spots", "color": "colour or brightness", "several_orientations": "several orientations",
           "flat": "flat", "texture": "texture"},
    "zh-TW": {"horizontal": "水平", "vertical": "垂直", "diagonal": "斜向", "lines": "線條或邊緣", "spots": "斑點",
              "color": "顏色或亮度", "several_orientations": "多種方向", "flat": "平坦", "texture": "紋理"},
}
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "What your answer claims, and what we measured",
        "supported": "supported", "contradicted": "contradicted", "not checkable": "not checkable",
        "attention": "the model looks at {parts}", "attention_not": "not at {parts}",
        "attention_none": "the model does not look at {parts}", "attention_for": " (on {classes})",
        "best_class": "{cls} is recognized best", "worst_class": "{cls} is recognized worst",
        "confused_pair": "{a} and {b} are confused", "filter_pattern": "the filters respond to {patterns}",
        "filter_not": "not to {patterns}", "freeform_subject": "{method}", "freeform_on": " on {what}",
        "part_share": "{part} {ratio:.2f}× its area ({share:.0%} of the map on {area:.0%} of the image{where})",
        "on_layout": ", placed by the canonical face layout",
        "part_share_rule": "{source} maps: {parts} (supported at ≥ {supported:g}×, contradicted below "
                           "{contradicted:g}×; a uniform map gives 1×)",
        "recall_best": "recall of {cls} {recall:.0%}; the best is {other} {other_recall:.0%} ({cls} ranks {rank:.0f}; "
                       "within {tie:.0%} counts as a tie)",
        "recall_worst": "recall of {cls} {recall:.0%}; the worst is {other} {other_recall:.0%} ({cls} ranks {rank:.0f} "
                        "from the bottom; within {tie:.0%} counts as a tie)",
        "confusion": "{a} predicted as {b}: {rate:.0%}; {b} as {a}: {reverse:.0%} (rank {rank:.0f} of the 42 "
                     "confusions); supported at ≥ {supported:.0%} or among the three most confused, contradicted below "
                     "{contradicted:.0%}",
        "filter_patterns": "of {patterns:.0f} patterns: {counts}",
        "method_same": "the free-choice figure is drawn with {method}",
        "method_other": "the free-choice figure is drawn with {method}, not with what the sentence names",
        "no_check": "no check exists for this kind of claim", "no_map": "this question drew no map to measure",
        "no_class_map": "no map explains the class the sentence names", "no_region": "no region is known for that part",
        "no_mass": "the maps are empty: there is nothing to place", "not_evaluated": "the model was not evaluated",
        "class_absent": "the evaluation data has no face of that class",
        "no_patterns": "no filter patterns were drawn",
        "comparison": "named beside the figure's own method: read as a comparison",
        "between": "between the thresholds: the measurement does not settle it",
    },
    "zh-TW": {
        "title": "你的回答的主張，以及我們量到的結果",
        "supported": "有依據", "contradicted": "與量測不符", "not checkable": "無法檢查",
        "attention": "模型注意{parts}", "attention_not": "而非{parts}", "attention_none": "模型不看{parts}", "attention_for": "（{classes}的圖）",
        "best_class": "{cls}辨識得最好", "worst_class": "{cls}辨識得最差",
        "confused_pair": "{a}與{b}容易混淆", "filter_pattern": "濾波器對{patterns}有反應",
        "filter_not": "而非{patterns}", "freeform_subject": "{method}", "freeform_on": "（{what}）",
        "part_share": "{part} {ratio:.2f} 倍於其面積（{area:.0%} 的面積上有 {share:.0%} 的圖值{where}）",
        "on_layout": "，位置依標準臉部版型",
        "part_share_rule": "{source}圖：{parts}（≥ {supported:g} 倍為有依據，低於 {contradicted:g} 倍為不符；"
                           "均勻的圖為 1 倍）",
        "recall_best": "{cls}的召回率 {recall:.0%}；最好的是{other} {other_recall:.0%}（{cls}排第 {rank:.0f}；"
                       "差距在 {tie:.0%} 以內視為同分）",
        "recall_worst": "{cls}的召回率 {recall:.0%}；最差的是{other} {other_recall:.0%}（{cls}倒數第 {rank:.0f}；"
                        "差距在 {tie:.0%} 以內視為同分）",
        "confusion": "{a}被預測為{b}：{rate:.0%}；{b}被預測為{a}：{reverse:.0%}（在 42 種混淆中排第 {rank:.0f}）；"
                     "≥ {supported:.0%} 或前三名為有依據，低於 {contradicted:.0%} 為不符",
        "filter_patterns": "{patterns:.0f} 個圖樣中：{counts}",
        "method_same": "自選視覺化的圖是用{method}畫的",
        "method_other": "自選視覺化的圖是用{method}畫的，不是句中所說的方法",
        "no_check": "這類主張沒有對應的檢查", "no_map": "這一題沒有可量測的圖",
        "no_class_map": "沒有圖解釋句中所說的類別", "no_region": "不知道該部位的位置",
        "no_mass": "圖是空的，無從量測", "not_evaluated": "模型沒有被評估",
        "class_absent": "評估資料中沒有該類別的臉", "no_patterns": "沒有畫出濾波器圖樣",
        "comparison": "與圖本身的方法並列：視為比較",
        "between": "介於兩個門檻之間：量測無法判定",
    },
}
PATTERN_COUNTS = ("horizontal", "vertical", "diagonal", "spots", "flat", "texture")
"""The per-kind counts of grader.claims.patterns' values that the evidence lists, in this order."""


@dataclass(frozen=True)
class ClaimLine:
    """A claim in words: `verdict` the verdict's word, `css` its class in the report (supported,
    contradicted, unchecked), `claim` what the sentence claims, `evidence` the numbers."""

    quote: str
    verdict: str
    css: str
    claim: str
    evidence: str


def claim_line(claim: ClaimResult, language: Language = "en") -> ClaimLine:
    w = WORDS[language]
    css = {"supported": "supported", "contradicted": "contradicted"}.get(claim.verdict, "unchecked")
    return ClaimLine(claim.quote, w[claim.verdict], css, claim_words(claim, language), evidence_words(claim, language))


def claims_by_question(claims: list[ClaimResult], language: Language = "en") -> dict[str, list[ClaimLine]]:
    lines: dict[str, list[ClaimLine]] = {}
    for claim in claims:
        lines.setdefault(claim.question, []).append(claim_line(claim, language))
    return lines


def _class(label: str | float, language: Language) -> str:
    index = int(float(label))
    names = class_names(language)
    return names[index] if 0 <= index < len(names) else str(label)


def _listed(names: list[str], table: Mapping[str, str], language: Language) -> str:
    return ("、" if language == "zh-TW" else ", ").join(table.get(name, name) for name in names)


def claim_words(claim: ClaimResult, language: Language = "en") -> str:
    """What the sentence claims, in words."""
    w, parts = WORDS[language], PARTS[language]
    if claim.kind == "attention":
        on = w["attention_for"].format(classes=_listed([_class(c, language) for c in claim.classes], {}, language)) \
            if claim.classes else ""
        if not claim.subject:
            return w["attention_none"].format(parts=_listed(claim.negated, parts, language)) + on
        text = w["attention"].format(parts=_listed(claim.subject, parts, language))
        return text + (("，" if language == "zh-TW" else ", ") + w["attention_not"].format(
            parts=_listed(claim.negated, parts, language)) if claim.negated else "") + on
    if claim.kind in ("best_class", "worst_class"):
        return w[claim.kind].format(cls=_class(claim.subject[0], language))
    if claim.kind == "confused_pair":
        return w["confused_pair"].format(a=_class(claim.subject[0], language), b=_class(claim.subject[1], language))
    if claim.kind == "filter_pattern":
        text = w["filter_pattern"].format(patterns=_listed(claim.subject, PATTERNS[language], language))
        return text + (("，" if language == "zh-TW" else ", ") + w["filter_not"].format(
            patterns=_listed(claim.negated, PATTERNS[language], language)) if claim.negated else "")
    if claim.kind == "freeform_subject":
        method, label, part = (list(claim.subject) + ["", "", ""])[:3]
        what = [name for name in (_class(label, language) if label else "", parts.get(part, part)) if name]
        return w["freeform_subject"].format(method=METHODS[language].get(method, method)) + (
            w["freeform_on"].format(what=_listed(what, {}, language)) if what else "")
    return claim.kind


def evidence_words(claim: ClaimResult, language: Language = "en") -> str:
    """The numbers that decided the verdict, or why there were none."""
    w, v = WORDS[language], claim.values
    if claim.measure == "part_share":
        named = [p for p in claim.subject + claim.negated if f"{p}_ratio" in v]
        shares = _listed([w["part_share"].format(part=PARTS[language].get(p, p), ratio=v[f"{p}_ratio"],
                                                 share=v[f"{p}_share"], area=v[f"{p}_area"],
                                                 where="" if v.get(f"{p}_on_masks", 1.0) else w["on_layout"])
                          for p in named], {}, language)
        text = w["part_share_rule"].format(source=METHODS[language].get(claim.source, claim.source), parts=shares,
                                           supported=v.get("supported_at", 0), contradicted=v.get("contradicted_at", 0))
    elif claim.measure == "recall":
        key = "recall_best" if claim.kind == "best_class" else "recall_worst"
        text = w[key].format(cls=_class(v["class"], language), recall=v["recall"],
                             other=_class(v["extreme_class"], language), other_recall=v["extreme_recall"],
                             rank=v["rank"], tie=v["tie"])
    elif claim.measure == "confusion":
        text = w["confusion"].format(a=_class(v["first"], language), b=_class(v["second"], language), rate=v["rate"],
                                     reverse=v["reverse_rate"], rank=v["rank"], supported=v["supported_at"],
                                     contradicted=v["contradicted_at"])
    elif claim.measure == "filter_patterns":
        counts = _listed([f"{v[k]:.0f} {PATTERNS[language][k]}" for k in PATTERN_COUNTS if v.get(k)], {}, language)
        text = w["filter_patterns"].format(patterns=v.get("patterns", 0), counts=counts or "—")
    elif claim.measure == "method":
        key = "method_same" if v.get("matches") else "method_other"
        text = w[key].format(method=METHODS[language].get(claim.reason, claim.reason))
    else:
        return w.get(claim.reason, claim.reason)
    return text + (("；" if language == "zh-TW" else "; ") + w["between"] if claim.reason == "between" else "")
