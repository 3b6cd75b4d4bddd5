"""Live widgets: drag a slider, the model is re-pruned from cached scores, the plots move in place.

>>> import pruneviz.widgets
>>> pruneviz.widgets.explore()                            # digits-cnn on the digits test set
>>> pruneviz.widgets.compare(criteria=["magnitude", "random"])
>>> ipywidgets.interact(show, removed=pruneviz.widgets.Slider(0.5, min=0.1, max=0.9, step=0.05, description="removed"))

The engine (:class:`PruningSession`, :class:`CachedEvaluator`) works without any widget, for scripts and benchmarks.
"""
from .accessible import Picture, Slider
from .compare import Comparison, compare
from .evaluator import CachedEvaluator
from .explorer import Explorer, explore
from .figure import LiveFigure, ipympl_active
from .session import SPARSITY_GRID, PruningSession, Readout, valid_granularities

__all__ = ["CachedEvaluator", "Comparison", "Explorer", "LiveFigure", "Picture", "PruningSession", "Readout",
           "SPARSITY_GRID", "Slider", "compare", "explore", "ipympl_active", "valid_granularities"]
