"""dsvdd_repro: an end-to-end reproduction of Chong et al., "Simple and Effective Prevention of
Mode Collapse in Deep One-Class Classification" (deep SVDD with noise / variance regularizers)."""

__version__ = "0.1.0"
