"""Write, read and verify a version's manifest, SHA256SUMS and dataset card."""
