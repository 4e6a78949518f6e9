"""Stages: thin adapters from pure-compute encoders to the scheduler's cadences and events."""
