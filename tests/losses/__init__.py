"""Tests of losses/."""
