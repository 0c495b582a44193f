"""Figures of the diagnostics. Each function returns its matplotlib figure and never shows it."""
