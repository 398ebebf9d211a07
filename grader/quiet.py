"""Silencing the libraries' banners, so that output shows the grader's lines and the student's prints."""

import logging
import warnings


def quiet_libraries() -> None:
    """Lightning prints a banner and a tip for every Trainer; a TA wants one line per student."""
    import pytorch_lightning  # noqa: F401  (it sets its loggers' levels on import; ours must come after)

    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric", "fontTools",
                 "weasyprint"):
        logging.getLogger(name).setLevel(logging.ERROR)
