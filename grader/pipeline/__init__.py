"""Grading, from one submission to a class. Each module does one thing:

- stages.py: the declared list of stages (names and gating) and the log that runs them
- setup.py: what stays the same for every submission of a run (GradingSetup), built in one place
- assessment.py: the one pure assessment of one submission (model protocol, faces, spec and
  settings in; a typed Assessment out; no I/O), used by the grader, the benchmarks and the tests
- result_record.py: an assessment scored by the rubric, as the Result (result.json)
- student_folder.py: grading one submission folder into its output folder (grade_submission)
- class_plan.py: settling who each folder of a class is, and its cache key, before anything runs
- class_run.py: grading a class (plan, cache, resume, the class outputs)
- runners.py / dask_runner.py: grading the planned submissions in this process, or on Dask
"""
