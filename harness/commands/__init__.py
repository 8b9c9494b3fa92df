"""One module per `ccbench` subcommand; each exposes a click command named `command`."""
