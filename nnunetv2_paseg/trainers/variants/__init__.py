"""The variants of the PA-Seg trainers that a user would run, each the default plus one change (nnU-Net's layout:
variants apart from the base classes)."""
