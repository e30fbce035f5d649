"""Language mixtures: strategies that turn corpus sizes and measured dynamics into a MixtureSpec."""
