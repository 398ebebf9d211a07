"""The report's figures, drawn by report/ from the typed results after scoring (nothing below
report/ imports matplotlib). One file per figure:

- drawing.py: the shared matplotlib setup (a figure on its own Agg canvas), PNG bytes drawn once,
  picture axes (no ticks, their Axis hidden) and grids of them
- attribution.py: attribution maps (saliency, SmoothGrad, Integrated Gradients, Grad-CAM)
- lime.py: LIME's superpixels for and against each label
- filters.py: filter patterns and filter outputs
- class_model.py: class-model visualization
- confusion.py: the confusion matrix
- randomization.py: Q1's maps under cascading randomization, drawn from the probes
- by_result.py: which figures each result type (and the probes) draws (the registry report/ uses)

Student text reaches a figure only as a layer's name (the filter layer, Grad-CAM's layer in the
saliency row's label). The functions that receive it pass it through `figure_text` once, where it
arrives: matplotlib would parse `$...$` as mathtext and raise on an unknown command while the figure
is drawn. Class names and the grader's own words are trusted and drawn as they are.
"""
