"""One run: discovery, the reads, the policy's plan carried out app by app, consumers."""
