"""ReX (causal responsibility, Chockler et al.): search, extraction and the method."""
