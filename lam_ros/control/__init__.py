"""Run-time control pieces: joint limits, watchdog, action-chunk ensembling (numpy only)."""
