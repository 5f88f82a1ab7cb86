"""systemd unit files as switch-to-configuration reads them: parse, merge, compare."""
