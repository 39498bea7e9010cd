"""Small shared pieces used by every entry point: the run-folder layout and Hydra resolvers."""
