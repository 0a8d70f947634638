"""Sweeps: the YAML spec, the pure planner, and the Ray driver that runs a plan."""
