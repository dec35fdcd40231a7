"""Tiny randomly initialised pipelines for offline tests (being written)."""
