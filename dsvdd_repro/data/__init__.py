"""Data: natural image sources, the paper's protocols (splits) and the anomaly generators."""
