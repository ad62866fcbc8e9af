"""rbio pipeline."""
