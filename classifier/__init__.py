"""Target-dependent sentiment classifier: encoding, network, artifacts, training, evaluation."""
