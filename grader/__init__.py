"""xai-grader: grade "explain your CNN" assignments and write each student a report."""

__version__ = "0.1.0"
