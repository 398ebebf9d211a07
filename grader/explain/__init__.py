"""The report's explanation methods, each a small class over the model protocol (grader.protocol),
so that they run the same on an in-process and on a sandboxed model."""
