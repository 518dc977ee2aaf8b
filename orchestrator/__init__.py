"""iq-promote."""
