"""Helpers of the test suite: ordinary modules, imported by the conftest fixtures and the tests."""
