"""The three verdicts a checked claim ends with."""

SUPPORTED, CONTRADICTED, NOT_CHECKABLE = "supported", "contradicted", "not checkable"
VERDICTS = (SUPPORTED, CONTRADICTED, NOT_CHECKABLE)
