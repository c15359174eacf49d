"""Numerai model upload: `dynjax export` and the numpy-only live model it pickles."""
