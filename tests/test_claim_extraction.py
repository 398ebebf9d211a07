"""Claim extraction (issue 16): what each written answer claims, in English and Chinese.

Extraction only reads text; checking a claim against the model is a separate step.
"""

import time

import pytest

from grader.claims.extract import (
    ATTENTION,
    BEST_CLASS,
    CONFUSED_PAIR,
    FILTER_PATTERN,
    FREEFORM_SUBJECT,
    WORST_CLASS,
    Claim,
    extract_claims,
)
from grader.claims.lexicon import CLASS_TERMS
from grader.claims.sentences import split_sentences
from grader.classes import CLASS_NAMES, class_index

HAPPY, DISGUST, FEAR, SAD, SURPRISE, ANGRY, NEUTRAL = "3", "1", "2", "4", "5", "0", "6"


def kinds(claims: list[Claim]) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """The claims without their quotes, for comparing what was read."""
    return [(c.kind, c.subject, c.negated) for c in claims]


def only(question: str, answer: str, kind: str) -> list[tuple[str, ...]]:
    """The subjects of one kind of claim."""
    return [c.subject for c in extract_claims(question, answer) if c.kind == kind]


# ---------------------------------------------------------------- attention


def test_an_english_attention_claim_names_the_parts_sorted():
    assert kinds(extract_claims("q1", "The model focuses on the nose, mouth and eyes.")) == [
        (ATTENTION, ("eyes", "mouth", "nose"), ())
    ]


def test_wu_guan_stands_for_eyes_brows_nose_and_mouth():
    [claim] = extract_claims("q1", "模型重視的區域會在鼻子、嘴、眼睛等五官的附近。")
    assert (claim.kind, claim.subject, claim.language) == (
        ATTENTION, ("brows", "eyes", "mouth", "nose"), "zh-TW"
    )


def test_a_part_after_not_is_excluded():
    assert kinds(extract_claims("q1", "It focuses on the eyes, not the hair.")) == [
        (ATTENTION, ("eyes",), ("hair",))
    ]


def test_a_chinese_negation_excludes_the_hair_and_the_contrast_keeps_the_eyes():
    assert kinds(extract_claims("q1", "模型並不是看頭髮，而是看眼睛。")) == [
        (ATTENTION, ("eyes",), ("hair",))
    ]


def test_a_sentence_that_only_excludes_still_makes_a_claim():
    assert kinds(extract_claims("q1", "模型並不是看頭髮。")) == [(ATTENTION, (), ("hair",))]


def test_inside_the_face_rather_than_the_background():
    assert kinds(extract_claims("q1", "The model looks inside the face rather than the background.")) == [
        (ATTENTION, ("face",), ("background",))
    ]


def test_a_negated_verb_excludes_every_part_of_its_list():
    assert kinds(extract_claims("q1", "The model does not look at the hair, forehead or chin.")) == [
        (ATTENTION, (), ("chin", "forehead", "hair"))
    ]


def test_a_new_verb_after_a_comma_ends_the_negation():
    assert kinds(extract_claims("q1", "It doesn't use the hair, it looks at the mouth and the lips.")) == [
        (ATTENTION, ("mouth",), ("hair",))
    ]


def test_a_new_verb_after_the_ignored_part_ends_the_negation():
    assert kinds(extract_claims("q1", "The model ignores the background and looks at the eyes.")) == [
        (ATTENTION, ("eyes",), ("background",))
    ]


def test_chinese_not_this_but_that_across_a_comma():
    assert kinds(extract_claims("q1", "模型看的不是背景，是眼睛。")) == [(ATTENTION, ("eyes",), ("background",))]


def test_a_part_said_to_be_ignored_is_excluded():
    claims = extract_claims("q1", "The eyebrows get most of the attention, while the background is ignored.")
    assert kinds(claims) == [(ATTENTION, ("brows",), ("background",))]


def test_a_part_with_no_gradient_is_excluded_in_chinese():
    claims = extract_claims("q1", "背景幾乎沒有梯度，代表模型沒有依賴光線或頭髮。")
    assert kinds(claims) == [(ATTENTION, (), ("background", "hair"))]


def test_a_part_whose_gradient_is_almost_zero_is_excluded():
    assert kinds(extract_claims("q1", "The gradient on the hair and background is almost zero.")) == [
        (ATTENTION, (), ("background", "hair"))
    ]


def test_a_negation_about_something_else_keeps_the_part_the_model_looks_at():
    assert only("q1", "It focuses on the eyes which is not surprising.", ATTENTION) == [("eyes",)]


def test_the_face_it_describes_is_not_where_the_model_looks():
    assert only("q1", "高興的臉，梯度集中在上揚的嘴角；", ATTENTION) == [("mouth",)]


def test_parts_before_the_cue_count_when_none_follow_it():
    assert only("q1", "The mouth and the cheeks are what the model relies on for Happy.", ATTENTION) == [
        ("cheeks", "mouth")
    ]


def test_the_face_gives_way_to_the_parts_inside_it():
    assert only("q1", "The saliency map highlights the face, especially the eyes.", ATTENTION) == [("eyes",)]


def test_simplified_spellings_are_read_too():
    assert only("q1", "模型关注的是眼睛和额头，而不是头发。", ATTENTION) == [("eyes", "forehead")]
    assert kinds(extract_claims("q1", "模型关注的是眼睛和额头，而不是头发。"))[0][2] == ("hair",)


def test_lime_superpixels_on_parts_are_an_attention_claim_in_any_question():
    assert only("q3", "兩者的重要超像素都落在張開的嘴與睜大的眼睛。", ATTENTION) == [("eyes", "mouth")]


def test_looks_like_is_not_looking():
    assert extract_claims("q2", "The filter visualization looks like a face with two eyes.") == []


def test_part_words_without_a_looking_verb_give_no_attention_claim():
    assert extract_claims("q1", "Happy faces have an open mouth and raised cheeks.") == []


# ---------------------------------------------------------------- best and worst class


@pytest.mark.parametrize(
    "sentence",
    [
        "The model does best on Happy.",
        "Happy is recognized most accurately.",
        "對於「開心」這個類別表現最好。",
        "快樂的準確率最高，幾乎都答對。",
        "Happiness has the highest accuracy of all seven classes.",
    ],
)
def test_the_best_class_is_read_in_both_languages(sentence):
    assert only("q3", sentence, BEST_CLASS) == [(HAPPY,)]


@pytest.mark.parametrize(
    "sentence",
    [
        "Disgust is the hardest class for the model.",
        "厭惡的準確率最低。",
        "The model performs worst on disgusted faces.",
        "噁心這一類最難辨識，因為訓練資料太少。",
    ],
)
def test_the_worst_class_is_read_in_both_languages(sentence):
    assert only("q3", sentence, WORST_CLASS) == [(DISGUST,)]


def test_best_and_worst_in_one_sentence_go_to_their_own_classes():
    claims = extract_claims("q3", "Disgust has the lowest accuracy, while Happy has the highest accuracy.")
    assert sorted(kinds(claims)) == [(BEST_CLASS, (HAPPY,), ()), (WORST_CLASS, (DISGUST,), ())]


def test_classes_listed_together_share_the_claim():
    assert only("q3", "Happy and Surprise are recognized best.", BEST_CLASS) == [(HAPPY,), (SURPRISE,)]


def test_not_the_best_is_no_best_claim():
    assert only("q3", "Neutral is not the best class.", BEST_CLASS) == []


def test_highest_without_a_score_is_not_a_best_class_claim():
    assert only("q1", "On happy faces the highest gradients sit on the mouth.", BEST_CLASS) == []


def test_the_class_labels_follow_grader_classes():
    for label, terms in CLASS_TERMS.items():
        assert class_index(CLASS_NAMES["en"][label]) == label
        assert CLASS_NAMES["en"][label].lower() in terms and CLASS_NAMES["zh-TW"][label] in terms


# ---------------------------------------------------------------- confused pairs


@pytest.mark.parametrize(
    "sentence",
    [
        "fear and sad are confused.",
        "恐懼和難過容易混淆。",
        "There is a lot of confusion between Sad and Fear.",
        "The model cannot tell Fear from Sad.",
        "模型無法區分害怕與傷心的臉。",
    ],
)
def test_an_undirected_confusion_gives_the_sorted_pair(sentence):
    assert only("q3", sentence, CONFUSED_PAIR) == [(FEAR, SAD)]


@pytest.mark.parametrize(
    "sentence",
    [
        "fear is often mistaken for sad.",
        "常把恐懼誤判為難過。",
        "恐懼的圖片常被誤判為悲傷。",
        "The model misclassifies scared faces as sad ones.",
        "Fear images were often predicted to be Sad.",
    ],
)
def test_a_directed_confusion_gives_true_then_predicted(sentence):
    assert only("q3", sentence, CONFUSED_PAIR) == [(FEAR, SAD)]


def test_the_direction_is_kept_when_the_predicted_class_sorts_first():
    assert only("q3", "Sad is often predicted as Neutral, and Surprise is mistaken for Fear.", CONFUSED_PAIR) == [
        (SAD, NEUTRAL),
        (SURPRISE, FEAR),
    ]


def test_a_list_of_mutually_confused_classes_gives_every_pair():
    assert only("q3", "難過、生氣與厭惡也互相混淆，重要區域是眉毛與嘴角。", CONFUSED_PAIR) == [
        (ANGRY, SAD),
        (DISGUST, SAD),
        (ANGRY, DISGUST),
    ]


def test_the_confusion_matrix_is_not_a_confusion_claim():
    assert extract_claims("q3", "The confusion matrix of Happy and Sad is in figure 3.") == []
    assert only("q3", "LIME 的結果與混淆矩陣一致：恐懼與驚訝最常混淆。", CONFUSED_PAIR) == [(FEAR, SURPRISE)]


def test_rarely_confused_is_no_confusion_claim():
    assert only("q3", "Happy is rarely confused with Sad.", CONFUSED_PAIR) == []
    assert only("q3", "開心和難過不容易混淆。", CONFUSED_PAIR) == []


# ---------------------------------------------------------------- filter patterns


def test_the_q2_filter_sentence_names_its_patterns():
    sentence = "The first layer's filters respond to simple lines: horizontal, vertical, diagonal, or spots."
    assert kinds(extract_claims("q2", sentence)) == [
        (FILTER_PATTERN, ("diagonal", "horizontal", "lines", "spots", "vertical"), ())
    ]


def test_chinese_edge_detectors_of_different_directions():
    assert only("q2", "第一層卷積的濾波器多半是不同方向的邊緣偵測器。", FILTER_PATTERN) == [
        ("lines", "several_orientations")
    ]


def test_chinese_horizontal_stripes_and_oblique_lines():
    sentence = "用梯度上升得到的圖樣有水平條紋（對應眉毛與嘴巴）與斜線。"
    assert kinds(extract_claims("q2", sentence)) == [(FILTER_PATTERN, ("diagonal", "horizontal", "lines"), ())]


def test_a_pattern_after_rather_than_is_excluded():
    assert kinds(extract_claims("q2", "Most kernels detect edges rather than colour.")) == [
        (FILTER_PATTERN, ("lines",), ("color",))
    ]


def test_outside_q2_a_pattern_needs_a_filter_word():
    assert only("q1", "The model did not rely on the lighting.", FILTER_PATTERN) == []
    assert only("q4", "The filters of conv1 look for vertical edges.", FILTER_PATTERN) == [("lines", "vertical")]


# ---------------------------------------------------------------- q4 free choice


def test_a_method_a_class_and_a_part():
    assert only("q4", "Grad-CAM on Happy highlights the mouth.", FREEFORM_SUBJECT) == [("gradcam", HAPPY, "mouth")]


def test_a_method_alone_keeps_the_three_slot_shape():
    assert only("q4", "我選擇積分梯度（Integrated Gradients）。", FREEFORM_SUBJECT) == [
        ("integrated_gradients", "", "")
    ]


def test_chinese_class_visualization_of_a_class():
    assert only("q4", "類別視覺化中，驚訝這一類出現許多張開的嘴巴。", FREEFORM_SUBJECT) == [
        ("class_model", SURPRISE, "mouth")
    ]


def test_smoothgrad_with_several_parts_gives_one_claim_each():
    assert only("q4", "SmoothGrad shows that Sad depends on the eyebrows and the mouth.", FREEFORM_SUBJECT) == [
        ("smoothgrad", SAD, "brows"),
        ("smoothgrad", SAD, "mouth"),
    ]


def test_freeform_subjects_are_read_only_in_q4():
    assert only("q1", "Grad-CAM on Happy highlights the mouth.", FREEFORM_SUBJECT) == []


# ---------------------------------------------------------------- several claims, none, languages


def test_one_sentence_can_make_a_best_class_and_an_attention_claim():
    claims = extract_claims("q3", "Happy is recognized best because the model focuses on the mouth.")
    assert kinds(claims) == [(ATTENTION, ("mouth",), ()), (BEST_CLASS, (HAPPY,), ())]


@pytest.mark.parametrize(
    "answer",
    [
        "I trained the network for 30 epochs with Adam.",
        "我用 PyTorch 訓練了三十個 epoch，結果還不錯。",
        "Overall the explanations were interesting and I learned a lot.",
    ],
)
def test_sentences_without_a_checkable_claim_give_nothing(answer):
    assert extract_claims("q1", answer) == []


def test_each_claim_reports_the_language_of_its_sentence():
    claims = extract_claims("q1", "The model looks at the eyes. 模型看嘴巴。")
    assert [(c.subject, c.language) for c in claims] == [(("eyes",), "en"), (("mouth",), "zh-TW")]


def test_the_question_id_is_kept_on_every_claim():
    assert {c.question for c in extract_claims("q3", "Fear is confused with Sad. Happy is best.")} == {"q3"}


# ---------------------------------------------------------------- quotes and sentences


def test_quotes_are_exact_spans_of_the_answer():
    answer = (
        "## Q1\n- The model focuses on the eyes, not the hair.\n"
        "  * 模型重視的區域會在鼻子、嘴、眼睛等五官的附近。Happy is recognized best (e.g. 0.91 accuracy).\n"
        "1. Fear is often mistaken for sad!"
    )
    claims = extract_claims("q3", answer)
    assert len(claims) == 4
    for claim in claims:
        assert answer[claim.start:claim.end] == claim.quote
    assert claims[0].quote == "The model focuses on the eyes, not the hair."
    assert claims[-1].quote == "Fear is often mistaken for sad!"


def test_chinese_sentences_split_at_full_width_marks():
    text = "模型看嘴巴。眼睛也很重要！為什麼？因為梯度大；背景則沒有"
    assert [s.text for s in split_sentences(text)] == ["模型看嘴巴。", "眼睛也很重要！", "為什麼？", "因為梯度大；", "背景則沒有"]


def test_decimals_and_abbreviations_do_not_end_a_sentence():
    text = "Accuracy is 0.65 on Happy, e.g. most smiles are found. Sad is 0.41."
    assert [s.text for s in split_sentences(text)] == [
        "Accuracy is 0.65 on Happy, e.g. most smiles are found.",
        "Sad is 0.41.",
    ]


def test_a_line_break_ends_a_sentence_and_markdown_markers_are_left_out():
    text = "# Saliency\n- the eyes matter\n2. the mouth matters\n> quoted"
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == ["Saliency", "the eyes matter", "the mouth matters", "quoted"]
    assert all(text[s.start:s.end] == s.text for s in sentences)


def test_a_closing_bracket_stays_with_its_sentence():
    assert [s.text for s in split_sentences("他說「模型看眼睛。」然後呢")] == ["他說「模型看眼睛。」", "然後呢"]


# ---------------------------------------------------------------- odd and hostile input


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "   \n\n\t",
        "\x00\x01\x02 eyes \x1b[31m mouth \x7f",
        "###\n- \n* \n1.\n> \n---",
        "。。。！！？？；；...!!??",
        "\ufffd\ufffd 模型看\u200b眼睛 \ud7ff",
    ],
)
def test_odd_input_gives_claims_or_nothing_without_error(answer):
    for claim in extract_claims("q1", answer):
        assert answer[claim.start:claim.end] == claim.quote


def test_control_characters_do_not_stop_a_claim_being_read():
    assert only("q1", "\x00The model looks at the eyes.\x07", ATTENTION) == [("eyes",)]


def test_a_hundred_thousand_characters_of_prose_are_read_quickly():
    answer = ("The model focuses on the eyes, not the hair. 常把恐懼誤判為難過。 " * 2000)[:100_000]
    began = time.perf_counter()
    claims = extract_claims("q3", answer)
    assert time.perf_counter() - began < 10
    assert len(claims) > 3000 and all(answer[c.start:c.end] == c.quote for c in claims[:50])


def test_a_hundred_thousand_characters_without_punctuation_return_quickly():
    for answer in ("eyes mouth happy sad confused best not " * 2600, "眼睛嘴巴開心難過混淆最好不" * 8000, "x" * 100_000):
        began = time.perf_counter()
        extract_claims("q4", answer[:100_000])
        assert time.perf_counter() - began < 10


def test_a_hundred_thousand_list_numbers_return_quickly():
    began = time.perf_counter()
    assert extract_claims("q2", "1. " * 33_000 + "\n" + " " * 50_000 + "2.") == []
    assert time.perf_counter() - began < 10


def test_a_part_said_of_the_free_choice_map_is_one_freeform_claim_not_also_an_attention_claim():
    claims = extract_claims("q4", "Grad-CAM on Sad highlights the mouth.")
    assert [(c.kind, c.subject) for c in claims] == [("freeform_subject", ("gradcam", "4", "mouth"))]


def test_a_paragraph_wrapped_over_two_lines_is_one_sentence():
    answer = "Fear is often mistaken for Sad, and LIME\nhighlights the brows for both.\n\n- A new item\n# Heading\nNext"
    assert [s.text for s in split_sentences(answer)] == [
        "Fear is often mistaken for Sad, and LIME\nhighlights the brows for both.", "A new item", "Heading", "Next"]


def test_the_gradients_being_strongest_somewhere_claims_no_best_class():
    kinds = [c.kind for c in extract_claims("q1", "For Happy the gradients are strongest around the smile.")]
    assert kinds == ["attention"]


def test_the_free_choices_are_the_registrys():
    from grader.claims.extract import FREEFORM_CHOICES
    from grader.explain.registry import FREEFORM_METHODS

    assert FREEFORM_CHOICES == set(FREEFORM_METHODS)
