"""Fixture engines for the service tests: one file per scenario, never the product default."""
