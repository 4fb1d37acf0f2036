"""Package data: the default configuration, the actor gazetteer and the runner profiles."""
