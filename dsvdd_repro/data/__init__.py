"""Data: natural image sources, the paper's protocols (splits) and the anomaly generators.

Importing the package registers every dataset option's config node (`dataset=cifar10`, `voc2012`,
`wikiart`, `folder`, `fake`) in Hydra's ConfigStore; `schema.build(cfg.dataset).load()` then gives
the decoded images (NaturalImages).
"""

from . import cifar10, fake, folder, voc2012, wikiart  # noqa: F401 - registers the dataset nodes
