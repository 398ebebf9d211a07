"""A student's submission: its submission.yaml, the model it builds, and the LightningModule around it."""
