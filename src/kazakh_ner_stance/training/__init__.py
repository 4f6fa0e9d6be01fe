"""Fine-tuning with transformers' Trainer (see train.py for why Trainer)."""
