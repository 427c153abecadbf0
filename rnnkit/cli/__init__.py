"""The ``rnnkit`` command line: one thin module per subcommand."""
