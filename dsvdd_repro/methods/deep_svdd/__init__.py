"""Deep SVDD (Ruff et al. 2018/2019) with the collapse regularizers of Chong et al."""
