"""Logs, secret redaction and the log-event catalogue."""
