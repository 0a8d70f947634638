"""Ray actors: each owns one engine (from ttscale.engines) and runs work units on it through the runner."""
