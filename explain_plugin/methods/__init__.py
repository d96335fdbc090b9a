"""Explanation methods: one module each, over shared mask, target and scoring code."""
