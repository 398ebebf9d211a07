"""What each written answer claims (issue 16): rule-based, bilingual (English, Traditional Chinese)
extraction of checkable claims from report.md answers. Extraction is pure text; checking a claim
against what the model measurably does is a separate step.

`extract.extract_claims(question_id, answer)` is the entry point; `lexicon` holds the word tables
and `sentences` the sentence splitter that keeps exact character offsets.
"""
