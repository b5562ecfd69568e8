"""Market layer: mechanisms (VCG clearing and its baselines) and the market pallets."""
