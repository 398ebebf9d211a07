"""Grading on a course platform (issue 18): one module per platform turns a graded Result into the
platform's results file (pure functions, Result -> dict), and `run.py` is the runner inside the
platform's container: it grades the one submission there with the course kit and always writes the
platform's results, even when grading itself crashes.

- `gradescope.py`: Gradescope's autograder zip (`grader gradescope`) and its results.json;
- `prairielearn.py`: PrairieLearn's external-grader results.json, figures inlined under 1 MB;
- `run.py`: `grader autograder gradescope|prairielearn --root ROOT`.

This layer sits beside grader.review, above grader.pipeline (.importlinter): it grades through the
pipeline's single-submission path, exactly as `grader check --kit` does.
"""
