"""rubric.yaml, the metric registry and turning measured values into points."""
