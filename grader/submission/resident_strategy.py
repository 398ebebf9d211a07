"""Lightning's single-device strategy for a predictor that answers many requests: the model stays
on its device between them."""

from __future__ import annotations

from pytorch_lightning.strategies import SingleDeviceStrategy


class ResidentSingleDevice(SingleDeviceStrategy):
    """SingleDeviceStrategy whose teardown leaves the model where it is.

    Lightning's Strategy.teardown ends every `predict` by moving the LightningModule to the CPU and
    emptying CUDA's cache: right after training, to free the GPU. The grader's one Trainer answers
    every logits request of a submission on the same module, so on a GPU the next request found
    the weights on the CPU and its inputs on the GPU ("Input type (torch.cuda.FloatTensor) and
    weight type (torch.FloatTensor) should be the same"), and each request would copy the weights
    both ways. Here teardown releases the precision plugin's and checkpoint IO's state only."""

    def teardown(self) -> None:
        self.precision_plugin.teardown()
        self.checkpoint_io.teardown()
