"""Corpus stand-in for a node script; parsed, never run."""
