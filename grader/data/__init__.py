"""Evaluation data: readers for the layouts courses use, the synthetic generator, the DataModule."""
