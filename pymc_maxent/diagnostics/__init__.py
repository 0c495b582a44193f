"""What the fits say: information gain, effects and elasticities, counterfactual prices and
revenue, posterior against MaxEnt, and model selection. Each function takes a posterior
(a PyMC model and its DataTree) or a :class:`~pymc_maxent.MaxEntResult` alike."""
