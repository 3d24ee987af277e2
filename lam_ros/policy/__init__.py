"""The Transformer policy, its normalisation and checkpoints (torch only)."""
