"""The one error type a submission's problems are reported with, and how an exception from
student code is put into words."""

import os
import traceback


class SubmissionError(Exception):
    """Something in a submission that the student has to fix.

    `stage` says where grading stopped (spec, load, checks, evaluate, ...); the message says
    what is wrong, where (file, line, field) and what to do.
    """

    def __init__(self, stage: str, message: str) -> None:
        self.stage = stage
        self.message = message
        super().__init__(f"{stage}: {message}")


def describe_exception(error: BaseException) -> str:
    """`Type: message (at file line N)`, naming the last frame outside the grader, the installed
    packages and the standard library: the line of the student's own code that raised it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not any(part in f.filename for part in ("/grader/", "site-packages", "/lib/python", "<frozen"))]
    where = f" (at {os.path.basename(frames[-1].filename)} line {frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {str(error)[:1000]}{where}"


def is_out_of_memory(error: BaseException) -> bool:
    """A MemoryError, or torch's allocator failing under the address-space limit."""
    text = str(error)
    return isinstance(error, MemoryError) or "can't allocate memory" in text or "bad_alloc" in text


def memory_error(error: BaseException) -> SubmissionError:
    return SubmissionError("memory", f"the model ran out of memory ({describe_exception(error)[:300]}); "
                                     "the limit is the hardware profile's memory_mb")
