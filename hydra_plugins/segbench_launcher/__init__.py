"""segbench Hydra launcher plugins (Hydra only loads plugins from the ``hydra_plugins`` namespace)."""
