"""A similarity report over the submissions: which pairs look copied, and why.

Trusted-side and pure: it reads what the grader already has, and parses no student binary. The
weights enter as a fingerprint (grader.fingerprint) that the sandbox computed from the loaded
model (`ModelProtocol.weights_fingerprint`) and the batch kept in the student's output folder;
the model source is read as bounded text and only parsed with `ast`; the predictions on the
evaluation set come from the batch's own arrays. Loading a weights file here would run a
TorchScript file's code as the grader (a `__setstate__` that loops forever hangs the whole
class's report) and let a compressed tensor inflate in the grader's memory.

Three independent signals, each with its own threshold (`pairs.SimilarityThresholds`):

weights      `weights.weights_similarity`: the weights matched by shape, whatever the parameter
             names, each shape-matched pair scored by the absolute Pearson correlation of its
             values, weighted by tensor size. Identical weights give 1, a copy with small noise or
             a few epochs of fine-tuning stays near 1, independently trained models of one
             architecture give about 0 (a fresh initialization is uncorrelated with any other).
             Strong evidence.
source       `source.normalized_source`: model.py without comments, docstrings, annotations,
             formatting or the student's own names. Only an exact match is flagged, and it is weak
             evidence alone: students start from the course's template, so an unchanged template
             matches every other unchanged template (pass the template to `find_similar_pairs` to
             ignore it). `source.source_similarity`'s ratio below 1 is shown for flagged pairs,
             never flagged.
predictions  `predictions.prediction_agreement`: agreement beyond what two models that err
             independently (given each one's confusion matrix) would show, and above all whether
             they make the same mistakes: on the faces at least one of them got wrong, two honest
             models disagree often (one is right, or they pick different wrong classes); a copy
             makes the same mistakes and only those.

`evidence.gather_evidence` collects one submission's evidence; `pairs.find_similar_pairs` compares
every pair (a few hundred submissions, 200 in about a second: fingerprints are computed once,
weights are compared only tensor by tensor of equal shape, largest first, stopping as soon as the
threshold is out of reach; the prediction signal is screened for all pairs at once with matrix
products); and `csv_report.write_similarity_csv` writes similarity.csv.

Modules (import each name from the module that defines it; this package re-exports nothing):

weights      weights_similarity, weights_similarity_at_least, shared_shape_bound: the weights
             fingerprints matched by shape.
source       MAX_SOURCE_BYTES, read_source (bounded reading of the student's file), known_names,
             normalized_source (the AST normalizer), source_similarity.
predictions  AgreementStats, prediction_agreement, as_class_indices, and PredictionScreen, which
             screens all pairs at once.
pairs        SubmissionEvidence, SimilarityThresholds, SimilarPair, SIGNALS, find_similar_pairs
             and the reason each pair is flagged, in words.
evidence     gather_evidence: one submission's evidence read from its folder and the batch's files.
csv_report   CSV_COLUMNS, write_similarity_csv.

Importing pairs or csv_report imports no torch (the dashboard needs SimilarPair): torch's
namespaces are imported only when `source.known_names` first runs.
"""
