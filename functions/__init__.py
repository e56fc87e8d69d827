"""Digest's Inngest client and step functions."""
