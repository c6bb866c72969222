"""Duckling: train a tiny GPT, film its embedding matrix, and study the tokens that never occur."""

__version__ = "0.1.0"
