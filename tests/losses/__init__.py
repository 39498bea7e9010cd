"""Tests of losses/ (issue 4)."""
