"""Make the source tree importable for pytest without an install."""
