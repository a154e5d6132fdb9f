"""Cost models and reports: energy per operation, memory accesses, area and timing."""
