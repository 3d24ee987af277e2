"""lam_ros: teach a robot arm a manipulation skill from demonstrations, then sharpen it by RL."""

__version__ = '0.1.0'
