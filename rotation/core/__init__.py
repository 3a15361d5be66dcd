"""The pure core: decisions, pacing and the ports the run acts through. No SDK, no clock, no I/O."""
