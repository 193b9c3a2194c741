"""Screens of the cachetop TUI."""
