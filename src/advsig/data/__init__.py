"""Image input/output at the library's edge, and training/validation image sources."""
