"""Batch files: reading them as text, detecting and parsing each format into rows, and
writing result files."""
