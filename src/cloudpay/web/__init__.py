"""HTTP plumbing shared by every context's `api.py`: errors, request ids, auth, idempotency."""
