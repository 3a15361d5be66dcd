"""Benchmarks of the rotator against the sandbox (`python -m bench`, `make bench`).

Speed is measured here and only here: tests assert behaviour, never time.
"""
