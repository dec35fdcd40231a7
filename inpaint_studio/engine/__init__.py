"""Inference engine: model discovery and loading, diffusion and classical fill. No Qt.

Importing this package is cheap: torch and diffusers are imported lazily by the modules that need them.
"""
