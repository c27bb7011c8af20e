"""Tests of the registry, the signed directory, agency tokens and keystores."""
