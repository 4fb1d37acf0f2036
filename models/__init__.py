"""Package data: the shipped model directories (see each MODEL_CARD.md)."""
