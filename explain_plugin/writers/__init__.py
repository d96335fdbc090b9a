"""Writers: explanation results to files, one item at a time, atomically."""
