"""Silencing the libraries' banners, so that output shows the grader's lines and the student's prints."""

import logging
import warnings

LIBRARY_LOGGERS = ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric", "fontTools", "weasyprint")


def quiet_libraries() -> None:
    """Lightning prints a banner and a tip for every Trainer; a TA wants one line per student.
    Imports nothing: a process that grades through a sandbox never loads Lightning (4 s of a core).
    Lightning sets its loggers' levels when it is imported, so a process that runs a model imports
    it by `import_lightning_quietly`, and the in-process model quiets its loggers again
    (`quiet_loggers`) where it makes its Trainer."""
    warnings.filterwarnings("ignore")
    quiet_loggers()


def quiet_loggers() -> None:
    """The libraries' loggers at ERROR; warnings are left as they are."""
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def import_lightning_quietly() -> None:
    """Import Lightning (and torch) now, then quiet it: a sandbox server's start-up, before its limits count."""
    import pytorch_lightning  # noqa: F401  (it sets its loggers' levels on import; ours must come after)

    quiet_libraries()
