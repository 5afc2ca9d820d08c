"""Policy tests an operator runs (`redaction-proxy test`): case files, a scripted backend, the runner."""
