"""Launch files, configs, the simulated Gen3 and bag tools for running DNK."""
