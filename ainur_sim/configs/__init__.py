"""Hydra configs shipped as package data. Importing this registers the structured schema, so both
``@hydra.main`` and the compose API see it."""

from ainur_sim.config import register_configs

register_configs()
