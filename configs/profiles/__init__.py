"""Package data: runner profiles (Beam pipeline options by name)."""
