"""vsearch: semantic search over your own text and images, with vector indexes in Redis."""

__version__ = "0.1.0"
