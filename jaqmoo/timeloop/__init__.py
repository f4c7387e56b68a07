"""Timeloop folders in and out: the readers combined (``inputs``), the ``*.stats.txt`` parser and
the reference check behind ``jaqmoo timeloop check``; the writers (``arch_out``, ``problem_out``,
``mapping_out``, ``stats_out``, ``readme_out``) behind ``--timeloop DIR`` (``export``)."""
