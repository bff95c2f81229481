"""Offline DNK pipeline: datasets, diffusion teacher, selectors, students, export, MuJoCo evaluation."""
