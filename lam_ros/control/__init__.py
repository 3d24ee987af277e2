"""Run-time control (numpy only): joint limits, command gate, watchdog, trajectories, chunks."""
