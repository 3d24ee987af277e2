"""
Training datasets: bags resampled at the policy rate into arrays, with statistics.

``build`` makes a ``Dataset`` from bags (and caches it in one safetensors file); ``rate``
chooses the policy rate (asked for, recorded, or measured on the commands); ``align``
resamples one episode onto the policy-rate grid; ``stats`` computes the normalisation
statistics; ``windows`` cuts observation histories and action chunks for training;
``report`` summarises a dataset, reports its exclusions and plots it.
"""
