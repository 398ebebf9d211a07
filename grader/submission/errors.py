"""The one error type a submission's problems are reported with."""


class SubmissionError(Exception):
    """Something in a submission that the student has to fix.

    `stage` says where grading stopped (spec, load, checks, evaluate, ...); the message says
    what is wrong, where (file, line, field) and what to do.
    """

    def __init__(self, stage: str, message: str) -> None:
        self.stage = stage
        self.message = message
        super().__init__(f"{stage}: {message}")
