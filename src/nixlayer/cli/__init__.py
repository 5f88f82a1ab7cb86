"""The `nixlayer` command: argument parsing, output, exit codes. No logic of its own."""
