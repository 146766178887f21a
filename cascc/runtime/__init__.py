"""Running artifacts: the artifact record, the TVM session, remote devices, benchmarks, baselines and CI gates."""
