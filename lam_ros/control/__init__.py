"""Run-time control (numpy only): joint limits, the command gate, watchdog, trajectories, chunks."""
