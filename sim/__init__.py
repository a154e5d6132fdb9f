"""Software models: datasets, network builders, learning rules, training, golden model."""
