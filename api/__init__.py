"""Jianshen (建审): the web service of the construction-project approval mini-program."""
