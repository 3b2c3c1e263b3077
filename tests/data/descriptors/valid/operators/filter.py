"""Corpus stand-in for an operator file; parsed, never run."""
