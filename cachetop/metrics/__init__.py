"""Pure metrics math: rates from counter deltas, hit ratios, histogram and probe quantiles."""
