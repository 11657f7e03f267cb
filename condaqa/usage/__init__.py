"""How environments of current are used: processes now, kernels, the sampler log, and what their files say."""
