"""Benchmarks of iq-promote against the simulator in its own process."""
