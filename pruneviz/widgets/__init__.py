"""Live widgets: drag a slider, the model is re-pruned from cached scores, the plots move in place.

>>> import pruneviz.widgets
>>> pruneviz.widgets.explore()                            # digits-cnn on the digits test set
>>> pruneviz.widgets.compare(criteria=["magnitude", "random"])

The engine (:class:`PruningSession`, :class:`CachedEvaluator`) works without any widget, for scripts and benchmarks.
"""
from .compare import Comparison, compare
from .evaluator import CachedEvaluator
from .explorer import Explorer, explore
from .figure import LiveFigure, ipympl_active
from .session import SPARSITY_GRID, PruningSession, Readout, valid_granularities

__all__ = ["CachedEvaluator", "Comparison", "Explorer", "LiveFigure", "PruningSession", "Readout",
           "SPARSITY_GRID", "compare", "explore", "ipympl_active", "valid_granularities"]
