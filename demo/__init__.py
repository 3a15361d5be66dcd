"""The walkthrough `make demo` runs: the rotator against the local sandbox. Never deployed."""
