"""Tests of lam_ros.policy (a package so test names never clash with other parts' tests)."""
