"""Building blocks shared by the injector and detector networks."""
