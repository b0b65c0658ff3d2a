"""Feature extractors phi (the networks whose outputs deep SVDD pulls toward c)."""
