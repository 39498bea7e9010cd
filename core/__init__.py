"""The lowest layer, importing nothing else of the project: run-folder layout, records and atomic writes, process
liveness, measurement and hardware profile, precision names, versions, results records, Hydra resolvers, errors."""
