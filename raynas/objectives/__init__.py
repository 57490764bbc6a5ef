"""Objectives beyond one metric, in one place:

* :mod:`raynas.objectives.pareto` — dominance, non-dominated sorting, hypervolume;
* :mod:`raynas.objectives.rewards` — metrics -> one scalar reward (the environments'
  and NPG's), with the non-stationary multi-objective rewards;
* :mod:`raynas.objectives.fronts` — a search's Pareto front (its files and plot) and a
  benchmark table's true front.
"""
