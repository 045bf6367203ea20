"""Training owns what comes after review: gold pairs, frozen dataset versions, export, training
runs, the gate, the model registry, promotion, quarantine and rollback. It may import every app."""
