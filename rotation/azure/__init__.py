"""One adapter per Azure service (and SMTP), named after it; identity, TLS trust and the
shared error mapping; clients.py builds them all (the one composition root). Adapters hand
the run our own model types, never SDK objects."""
