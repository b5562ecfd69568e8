"""Chain layer: network, block production, fork choice, finality, pool, fees, runtime."""
