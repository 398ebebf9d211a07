"""Q4 (default free choice): class-model visualization (Simonyan, Vedaldi & Zisserman 2014, "Deep
inside convolutional networks", Sec. 2): the image I that maximizes the class score S_c(I) minus
an L2 penalty lambda * ||I||^2, found by gradient ascent from noise, for each of the 7 classes.

Every step is ONE `input_gradient` request of all classes together (ClassLogit with classes
0..C-1, image c climbing class c); one `logits` request at the end gives each image's softmax
probability of its own class. The loop is grader.explain.ascent.gradient_ascent.
"""

from __future__ import annotations

import numpy as np

from grader.explain.ascent import AscentSettings, gradient_ascent, start_images
from grader.explain.base import Visualization
from grader.explain.results import ClassImages
from grader.numerics import softmax
from grader.protocol import ClassLogit, ModelProtocol


class ClassModelVisualization(Visualization):
    """Gradient ascent on S_c(I) - lambda ||I - 128||^2 from one gray noise image, all classes in one batch.

    Choices, and why:
    - the score S_c is the class logit, not the softmax probability, as in Simonyan et al.: the
      probability can rise by pushing the other classes down, the logit only by building class c;
    - raw pixels have no zero mean, so the penalty is on the distance from mid-gray (the paper's
      images are mean-subtracted, where ||I|| is that distance). It is applied in its proximal
      form, a decay I <- 128 + (1 - l2)(I - 128) after each step (Yosinski et al. 2015); with
      RMS-normalized steps (see AscentSettings) the decay keeps each image's RMS distance from gray
      below step_size * (1 - l2) / l2 plus the decayed start noise, whatever the model's scale,
      where a fixed lambda would need tuning per model;
    - defaults step_size 2, l2 0.02 (bound ~98 pixels RMS; the clip to 0..255 bounds each pixel
      too), 200 steps, jitter 1 pixel, blur sigma 0.5 every 4th step, as in the filter
      visualization: on the course's VGG six classes reach a probability above 0.99 with images
      smooth enough to read (about 20 pixels RMS from gray: the blur, more than the decay, holds
      them there). Its Disgust image stays near 0.1, Angry taking the rest, with or without
      blur, jitter or decay and at 400 steps: that model's Disgust logit cannot be raised
      without raising Angry's more.
    """

    name = "class_model"

    def __init__(self, model: ModelProtocol, steps: int = 200, step_size: float = 2.0, l2: float = 0.02,
                 noise: float = 8.0, jitter: int = 1, blur_every: int = 4, blur_sigma: float = 0.5,
                 seed: int = 0) -> None:
        super().__init__(model)
        self.settings = AscentSettings(steps=steps, step_size=step_size, l2=l2, noise=noise, blur_every=blur_every,
                                       blur_sigma=blur_sigma, jitter=jitter, seed=seed)

    def visualize(self) -> ClassImages:
        """`steps` requests of C images, then one logits request of the C final images."""
        classes = np.arange(self.model.describe().num_classes, dtype=np.int64)
        start = start_images(len(classes), self.settings)
        images = gradient_ascent(self.model, start, ClassLogit(classes), self.settings)
        probabilities = softmax(np.asarray(self.model.logits(images)))
        return ClassImages(images=images, target_prob=probabilities[classes, classes])
