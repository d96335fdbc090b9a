"""Sample models and interpreter scripts for tests and demos."""
