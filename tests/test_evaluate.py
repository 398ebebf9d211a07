"""Accuracy and the confusion matrix (rows = true class, row-normalized) through Trainer.predict."""

import numpy as np
import torch
from torch import nn

from grader.data.synth import generate
from grader.evaluate import evaluate
from grader.submission.inprocess import InProcessModel
from grader.submission.module import SubmissionModule


def test_confusion_rows_are_true_classes_and_sum_to_one():
    labels = np.array([0, 0, 0, 3, 3])
    predictions = np.array([0, 3, 3, 3, 3])
    result = evaluate(np.eye(7)[predictions], labels)
    assert result.counts[0, 3] == 2 and result.counts[3, 0] == 0
    np.testing.assert_allclose(result.confusion[0], [1 / 3, 0, 0, 2 / 3, 0, 0, 0])
    np.testing.assert_allclose(result.confusion[3], [0, 0, 0, 1, 0, 0, 0])
    assert result.accuracy == 3 / 5


def test_a_class_without_images_has_a_row_of_zeros():
    result = evaluate(np.eye(7)[[1, 2]], np.array([1, 2]))
    assert result.confusion[0].sum() == 0
    np.testing.assert_allclose(result.per_class_recall, [0, 1, 1, 0, 0, 0, 0])


class Darkness(nn.Module):
    """Logits that depend only on mean brightness, so its predictions are easy to compute by hand."""

    def forward(self, x):
        brightness = x.mean(dim=(1, 2, 3))
        return torch.stack([brightness * k for k in range(7)], dim=1)


def test_in_process_logits_come_through_trainer_predict_for_every_image_in_order():
    faces = generate(300, seed=1)  # more than one predict batch
    module = SubmissionModule(Darkness())
    logits = InProcessModel(module).logits(faces.images.astype(np.float32))
    expected = module(torch.from_numpy(faces.images.astype(np.float32))).detach().numpy()
    assert logits.shape == (300, 7)
    np.testing.assert_allclose(logits, expected, rtol=1e-6)
