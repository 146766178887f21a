"""cascc's hand-scheduled TIR kernels and the weight packings they read."""
