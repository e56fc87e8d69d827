"""SDK apps served by the conformance suite, one per test module."""
