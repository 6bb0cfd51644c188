"""The HTTP layer: dependencies, parameters and the router that mounts the domains."""
