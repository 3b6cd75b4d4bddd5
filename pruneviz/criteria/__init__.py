"""Criteria: how important each weight (or each group of weights) is. Low score = pruned first.

One module per family of the lecture:

- ``magnitude``: |w| (L1), L2 norms, and the random baseline; no data needed;
- ``scaling``: BatchNorm gamma (network slimming), channel granularity;
- ``obd``: Optimal Brain Damage's second-order saliency 1/2 h_ii w_i^2, any granularity;
- ``apoz``: average percentage of zero activations after the ReLU, channel granularity;
- ``regression``: He et al. 2017's LASSO channel selection for the next layer, channel granularity.

New criteria register with :func:`register`; the Pruner finds them by name.
"""
from .apoz import APoZ, apoz
from .base import REGISTRY, Criterion, ElementCriterion, Scores, get_criterion, register
from .magnitude import L2Magnitude, Magnitude, Random
from .obd import OBD, hessian_diagonal, obd_saliency
from .regression import Regression, lasso_order, layer_features, least_squares, next_layers, reconstruct
from .scaling import Scaling, slimming_loss, slimming_penalty

__all__ = ["APoZ", "OBD", "REGISTRY", "Criterion", "ElementCriterion", "L2Magnitude", "Magnitude", "Random",
           "Regression", "Scaling", "Scores", "apoz", "get_criterion", "hessian_diagonal", "lasso_order",
           "layer_features", "least_squares", "next_layers", "obd_saliency", "reconstruct", "register",
           "slimming_loss", "slimming_penalty"]
