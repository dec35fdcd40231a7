"""Inpaint Studio: local image inpainting with a layered canvas, brush masks and diffusion models."""

__version__ = "0.1.0"
