"""The training stage: training data in every common format (data), held-out contamination checks
(decontam); next: the training config and SFT/DPO runs over TRL."""
