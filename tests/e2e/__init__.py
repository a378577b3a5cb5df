"""End-to-end tests against a real Label Studio and real backend processes."""
