"""Layer a CI job's configuration over the runner's base system, and switch to it."""
