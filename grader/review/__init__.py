"""The TA's review workspace (issue 15): the written answers graded question by question, stored in
a real database so that several TAs can work at once and nothing they save is lost.

- `schema`: the SQLAlchemy 2 tables (students, criteria, scores with a version for optimistic
  concurrency, score_history, reusable comments, regrade_requests, assignments);
- `database`: `open_database` (a path: SQLite in WAL mode; a URL such as postgresql://...: as is)
  and `default_database` (OUT/review.sqlite);
- `values`: what the store hands back (frozen dataclasses) and the errors it raises: a
  `ReviewInputError` (a ValueError: the web API's 4xx) or a `ScoreConflict` (the API's 409);
- `checks`: the checks of each input a save or a request carries (finite numbers in range, text a
  database can keep, a TA's name);
- `rowvalues`: the lookups that raise UnknownStudent / UnknownCriterion / UnknownQuestion, and each
  row turned into its value;
- `store`: `ReviewStore`, every read and write of the workspace: importing a graded output folder,
  saving scores with their history, progress, reusable comments, regrade requests, assignments,
  and the export to the `grader grade --manual` scores.csv.

The web app (`app`, `views`, `security`) sits on the store and reaches the database only through it.

Layer: above grader.pipeline, below grader.cli (see .importlinter). Student text (names, answers,
comments) is stored as given; each sink escapes it where it leaves.
"""
