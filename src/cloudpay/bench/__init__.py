"""Benchmarks (`cloudpay bench …`): JSON on stdout, always against a baseline of the same run."""
