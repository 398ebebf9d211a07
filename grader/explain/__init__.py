"""The report's explanation methods, one file per method, each a small class over the model protocol
(grader.protocol) that returns a typed result (results.py), so that they run the same on an
in-process and on a sandboxed model. base.py holds the two bases, registry.py names them all."""
