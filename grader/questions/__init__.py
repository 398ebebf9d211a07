"""The report's questions over the model protocol: each question runs the explanation method the
rubric names for it (grader.explain.registry) on one evaluation face per class and returns the
method's typed result. No torch, no student code, no figures: the protocol in, typed results out.

- settings.py: how much work each method does (the course's settings, `quick()` for pre-checks)
- examples.py: the one face per class every question explains
- context.py: what a question may use
- methods.py: how a question runs each registered method from the settings
- output.py: what a question hands on (its typed result and names), types only
- answer.py: running one question (the stage `q<N>_<method>`)
"""
