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
        # the class dashboard (grader/report/dashboard.py)
        "dashboard_title": "Explain your CNN: class dashboard", "dashboard_name": "Name",
        "dashboard_pending": "Manual scores pending", "dashboard_yes": "yes", "dashboard_no": "no",
        "dashboard_report": "Report", "dashboard_students": "Students",
        "dashboard_sort_hint": "Click a column header to sort by it; click it again to reverse the order.",
        "dashboard_submissions": "Submissions", "dashboard_graded": "Graded", "dashboard_failed": "Failed",
        "dashboard_mean": "Mean total", "dashboard_median": "Median total",
        "dashboard_histograms": "Score distributions", "dashboard_count": "Students",
        "dashboard_histogram_note": "Graded submissions only; %d failed submission(s) not counted.",
        "dashboard_no_graded": "No submission has been graded.",
        "dashboard_failures": "Failed submissions", "dashboard_no_failures": "No submission failed.",
        "dashboard_similar": "Similar submissions", "dashboard_signals": "Signals", "dashboard_reason": "Why",
        "dashboard_no_similar": "No two submissions look copied.",
        "dashboard_similar_note": "Flagged for a TA to look at, not judged: see similarity.csv for every value.",
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
        # the class dashboard (grader/report/dashboard.py)
        "dashboard_title": "解釋你的 CNN：全班總覽", "dashboard_name": "姓名",
        "dashboard_pending": "待助教評分", "dashboard_yes": "是", "dashboard_no": "否",
        "dashboard_report": "報告", "dashboard_students": "學生",
        "dashboard_sort_hint": "點選欄位標題即依該欄排序；再點一次則反向排序。",
        "dashboard_submissions": "繳交數", "dashboard_graded": "已評分", "dashboard_failed": "失敗",
        "dashboard_mean": "總分平均", "dashboard_median": "總分中位數",
        "dashboard_histograms": "分數分布", "dashboard_count": "人數",
        "dashboard_histogram_note": "只計已評分的繳交；另有 %d 份失敗的繳交未列入。",
        "dashboard_no_graded": "尚無已評分的繳交。",
        "dashboard_failures": "失敗的繳交", "dashboard_no_failures": "沒有失敗的繳交。",
        "dashboard_similar": "相似的繳交", "dashboard_signals": "訊號", "dashboard_reason": "原因",
        "dashboard_no_similar": "沒有看似抄襲的繳交。",
        "dashboard_similar_note": "僅供助教檢查，並非判定；所有數值見 similarity.csv。",
    },
}


def words(language: Language) -> dict[str, str]:
    return WORDS[language]
