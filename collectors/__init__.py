"""Headless polling layer: collectors turn one cache instance's replies into a Sample."""
