"""Feature extractors phi (the networks whose outputs deep SVDD pulls toward c) and their weights.
A network knows no dataset: what it fits (LeNet's normalisation) it gets as plain tensors.

May import: core, storage
"""
