"""The book: what chapters call, the figures, and the Quarto / fallback renderers."""
