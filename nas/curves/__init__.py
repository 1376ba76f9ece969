"""Learning-curve extrapolation: our own LC-PFN (Adriaensen et al., 2023).

A small transformer trained on curves sampled from the parametric prior of
Domhan et al. (2015) predicts the distribution of a curve's value at a
later epoch from its first epochs, in one forward pass for many curves.
The schedulers use it to stop trials that are unlikely to beat the best.

* :mod:`nas.curves.prior` -- the curve families and their parameter priors (numpy only);
* :mod:`nas.curves.bar` -- the bar distribution over buckets the model outputs;
* :mod:`nas.curves.model` -- the transformer;
* :mod:`nas.curves.train` -- ``python -m nas.curves.train`` writes the shipped weights;
* :mod:`nas.curves.weights` -- where the weights are, their checksum, safe loading;
* :mod:`nas.curves.predict` -- ``predict(curves, horizon)``, ``prob_above(...)``;
* :mod:`nas.curves.stopping` -- the ``lc`` scheduler's rule: stop when ``P(final > best) < threshold``.

Nothing is imported here, so ``nas.curves.prior`` stays free of torch.
"""
