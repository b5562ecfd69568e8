"""Agent populations (Mesa 3.3 models) that use the protocol through the RPC layer."""
