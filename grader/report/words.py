"""The report's fixed words in each report language."""

from grader.classes import Language

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Explain your CNN: grading report", "student": "Student", "student_id": "Student ID",
        "status": "Status", "graded": "graded", "failed": "failed", "total": "Total",
        "question": "Question", "score": "Score", "max": "Max", "criterion": "Criterion",
        "value": "Measured", "threshold": "Points for", "points": "Points", "result": "Result",
        "pass": "full points", "partial": "partial credit", "fail": "no points", "pending": "awaiting the TA",
        "manual": "TA", "accuracy": "Accuracy", "confusion": "Confusion matrix",
        "confusion_note": "rows: true class, columns: predicted class; each row sums to 1",
        "recall": "Per-class recall", "errors": "What to fix", "no_errors": "No problems found.",
        "appendix": "Appendix", "profile": "Hardware profile", "version": "Tool version",
        "sha": "Submission SHA-256", "timings": "Timings (s)", "data": "Evaluation data",
        "pending_note": "Manual criteria are scored by the TA; the total counts automatic points so far.",
        "isolation": "Student code ran in", "output": "What your code printed (stdout and stderr, bounded)",
        "answer": "Your written answer", "ta_comment": "TA's comment",
        "no_answer": "No written answer found: report.md needs a section headed '## %s'.",
        "override": "Points set by the TA; the automatic score was",
    },
    "zh-TW": {
        "title": "解釋你的 CNN：評分報告", "student": "學生", "student_id": "學號",
        "status": "狀態", "graded": "已評分", "failed": "失敗", "total": "總分",
        "question": "題目", "score": "得分", "max": "滿分", "criterion": "評分項目",
        "value": "量測值", "threshold": "給分條件", "points": "分數", "result": "結果",
        "pass": "滿分", "partial": "部分給分", "fail": "未得分", "pending": "待助教評分",
        "manual": "助教", "accuracy": "準確率", "confusion": "混淆矩陣",
        "confusion_note": "列：實際類別，欄：預測類別；每列總和為 1",
        "recall": "各類別召回率", "errors": "需要修正的地方", "no_errors": "沒有發現問題。",
        "appendix": "附錄", "profile": "硬體設定", "version": "工具版本",
        "sha": "繳交檔案 SHA-256", "timings": "各階段時間（秒）", "data": "評估資料",
        "pending_note": "人工評分項目由助教評分；目前總分只計自動評分。",
        "isolation": "學生程式執行環境", "output": "你的程式輸出（stdout 與 stderr，有長度上限）",
        "answer": "你的書面回答", "ta_comment": "助教評語",
        "no_answer": "找不到書面回答：report.md 需要一個標題為「## %s」的段落。",
        "override": "分數由助教調整；自動評分原為",
    },
}


def words(language: Language) -> dict[str, str]:
    return WORDS[language]
