"""Evaluation: real offline tasks, baselines, metrics, and the table that compares them."""
