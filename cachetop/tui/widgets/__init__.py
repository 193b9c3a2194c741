"""Widgets of the cachetop TUI."""
