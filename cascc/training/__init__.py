"""Training: the train plan and its run, distributed launches through torchrun."""
