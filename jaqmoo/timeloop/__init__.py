"""Validation against real Timeloop runs: the ``*.stats.txt`` parser and the reference check
behind ``jaqmoo timeloop check``."""
