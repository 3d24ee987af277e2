"""Tests of lam_ros.nodes over real DDS (a package so helpers import relatively)."""
