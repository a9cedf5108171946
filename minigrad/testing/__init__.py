"""Tools for checking ops: `gradcheck` and, in `minigrad.testing.strategies`, Hypothesis
strategies (imported on demand, so Hypothesis is needed only by those who test)."""

from minigrad.testing.gradcheck import GradcheckError, gradcheck

__all__ = ["GradcheckError", "gradcheck"]
