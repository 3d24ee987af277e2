"""
Training datasets: bags resampled at the policy rate into arrays, with statistics.

``build`` makes a ``Dataset`` from bags (and caches it in one safetensors file); ``align``
resamples one episode onto the policy-rate grid; ``stats`` computes the normalisation
statistics; ``windows`` cuts observation histories and action chunks for training;
``report`` summarises and plots a dataset.
"""
