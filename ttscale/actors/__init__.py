"""Ray actors that own one engine each, and the engines they own."""
